#include "tests/support/engines.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <vector>

namespace stargate::test {
namespace {

constexpr auto kStartLimit = std::chrono::seconds(20);

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Starts `argv` (made for a port) until one port works: another program may take a free
// port between free_port() and the engine's bind.
std::unique_ptr<Child> start_on_free_port(int& port,
                                          const std::function<std::vector<std::string>(int)>& argv,
                                          const std::string& log_path, std::string& error) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (port == 0) port = free_port();
    auto child = std::make_unique<Child>(argv(port), std::vector<std::string>{}, log_path);
    // Its own socket, not another test's engine that took the same port a moment earlier.
    if (wait_until([&] { return listens_on(child->pid(), port) || !child->running(); },
                   kStartLimit) &&
        child->running()) {
      return child;
    }
    child->stop(SIGKILL);
    error = argv(port)[0] + " did not start on port " + std::to_string(port) + ": " +
            read_file(log_path).substr(0, 2000);
    port = 0;
  }
  return nullptr;
}

// The inodes of the sockets listening on 127.0.0.1:port (/proc/net/tcp).
std::vector<std::string> listening_inodes(int port) {
  std::vector<std::string> inodes;
  std::istringstream table(read_file("/proc/net/tcp"));
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X", port);
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, address, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> address >> remote >> state >> queues >> timer >> retransmits >> uid >>
        timeout >> inode;
    if (address == local && state == "0A") inodes.push_back(inode);
  }
  return inodes;
}

std::string random_name() {
  std::random_device random;
  return std::to_string(random()) + std::to_string(random());
}

}  // namespace

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address = loopback(0);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

bool listens_on(pid_t pid, int port) {
  const auto inodes = listening_inodes(port);
  if (inodes.empty()) return false;
  std::error_code error;
  for (const auto& fd :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", error)) {
    std::error_code ignored;
    const std::string target = std::filesystem::read_symlink(fd.path(), ignored).string();
    for (const auto& inode : inodes) {
      if (target == "socket:[" + inode + "]") return true;
    }
  }
  return false;
}

bool accepts_connections(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address = loopback(port);
  const bool connected = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return connected;
}

RedisServer::RedisServer(const std::string& dir, bool aof_always, std::string password)
    : dir_(dir), aof_always_(aof_always), password_(std::move(password)) {
  std::filesystem::create_directories(dir_);
  start();
}

RedisServer::~RedisServer() {
  stop(true);
}

pid_t RedisServer::pid() const {
  return child_ ? child_->pid() : -1;
}

bool RedisServer::start() {
  if (child_) return true;
  const auto argv = [this](int port) {
    std::vector<std::string> args = {"/usr/bin/redis-server",
                                     "--port",
                                     std::to_string(port),
                                     "--bind",
                                     "127.0.0.1",
                                     "--dir",
                                     dir_,
                                     "--save",
                                     "",
                                     "--daemonize",
                                     "no",
                                     "--protected-mode",
                                     "yes"};
    if (aof_always_) {
      args.insert(args.end(), {"--appendonly", "yes", "--appendfsync", "always"});
    }
    if (!password_.empty()) args.insert(args.end(), {"--requirepass", password_});
    return args;
  };
  child_ = start_on_free_port(port_, argv, dir_ + "/redis.log", error_);
  return child_ != nullptr;
}

void RedisServer::stop(bool kill) {
  if (!child_) return;
  child_->stop(kill ? SIGKILL : SIGTERM);
  child_.reset();
}

std::string MongoServer::ferretdb_program() {
  if (const char* set = std::getenv("STARGATE_FERRETDB"); set != nullptr && *set != '\0') {
    return set;
  }
  std::string tools;
  if (const char* set = std::getenv("STARGATE_TOOLS"); set != nullptr && *set != '\0') {
    tools = set;
  } else if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache != nullptr && *cache) {
    tools = std::string(cache) + "/stargate/tools";
  } else {
    const char* home = std::getenv("HOME");
    tools = std::string(home != nullptr ? home : "/root") + "/.cache/stargate/tools";
  }
  return tools + "/ferretdb-v1.24.2/ferretdb";
}

MongoServer::MongoServer(const std::string& dir, std::string user, std::string password)
    : dir_(dir), user_(std::move(user)), password_(std::move(password)) {
  if (const char* set = std::getenv("STARGATE_TEST_MONGODB_URI"); set != nullptr && *set) {
    external_ = set;
  }
  std::filesystem::create_directories(dir_);
  start();
}

MongoServer::~MongoServer() {
  stop(true);
}

pid_t MongoServer::pid() const {
  return child_ ? child_->pid() : -1;
}

bool MongoServer::start() {
  if (!external_.empty()) {
    // A database of its own on the real server: "mongodb://host/?opts" -> ".../sgtest_N?opts".
    if (uri_.empty()) {
      const auto query = external_.find('?');
      std::string base = external_.substr(0, query);
      const auto slash = base.find('/', base.find("://") + 3);
      if (slash != std::string::npos) base.resize(slash);
      uri_ = base + "/sgtest_" + random_name() +
             (query == std::string::npos ? "" : external_.substr(query));
    }
    ok_ = true;
    return true;
  }
  if (child_) return true;
  const std::string program = ferretdb_program();
  if (access(program.c_str(), X_OK) != 0) {
    error_ = "no MongoDB-compatible server: " + program +
             " is missing (scripts/bootstrap builds it) and STARGATE_TEST_MONGODB_URI is not set";
    ok_ = false;
    return false;
  }
  std::filesystem::create_directories(dir_ + "/data");
  const auto argv = [&](int port) {
    std::vector<std::string> args{program,
                                  "--handler=sqlite",
                                  "--sqlite-url=file:" + dir_ + "/data/",
                                  "--state-dir=" + dir_,
                                  "--listen-addr=127.0.0.1:" + std::to_string(port),
                                  "--telemetry=disable",
                                  "--debug-addr=-",
                                  "--log-level=warn"};
    if (!user_.empty()) {
      args.insert(args.end(), {"--test-enable-new-auth", "--setup-database=stargate",
                               "--setup-username=" + user_, "--setup-password=" + password_});
    }
    return args;
  };
  child_ = start_on_free_port(port_, argv, dir_ + "/ferretdb.log", error_);
  ok_ = child_ != nullptr;
  uri_ = "mongodb://127.0.0.1:" + std::to_string(port_) + "/stargate";
  return ok_;
}

void MongoServer::stop(bool kill) {
  if (!child_) return;
  child_->stop(kill ? SIGKILL : SIGTERM);
  child_.reset();
}

}  // namespace stargate::test
