// The chaos run (issue 10): the real stargate-server, stargated and stargate, submissions
// from one CLI submitter and several socket submitters at once, while the daemon is killed
// with SIGKILL at random moments and the server now and then, and the path between daemon
// and gateway loses packets (nftables in a network namespace made for the run) and is
// slowed by a delaying relay (this kernel has no netem). The verdict is four figures:
// acknowledged, lost, duplicated, out of order; the run fails unless the last three are 0.
//
// Usage: stargate-chaos [--submissions N] [--submitters N] [--daemon-kills N]
//          [--server-kills N] [--loss PERCENT] [--delay-ms MS] [--seed N] [--bin DIR]
//          [--limit SECONDS] [--keep]
// (and, internally, stargate-chaos --relay LISTEN_PORT UPSTREAM_PORT DELAY_MS).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "shared/sqlite.hpp"
#include "tests/support/process.hpp"

namespace stargate::chaos {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  int submissions = 300;
  int submitters = 4;  // one through the CLI, the others on the socket at once
  int daemon_kills = 15;
  int server_kills = 4;
  int loss = 10;  // percent of packets dropped each way
  int delay_ms = 20;
  unsigned seed = static_cast<unsigned>(std::random_device{}());
  std::string bin = STARGATE_BIN_DIR;
  std::chrono::seconds limit{600};
  bool keep = false;
};

void say(const std::string& line) {
  std::fprintf(stdout, "chaos: %s\n", line.c_str());
  std::fflush(stdout);
}

std::string self_path() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<std::size_t>(n)) : "stargate-chaos";
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// ---- the delaying relay (its own process, inside the namespace) ----

void pump(int from, int to, int delay_ms) {
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(from, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    if (::send(to, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
  }
  ::shutdown(to, SHUT_WR);
  ::shutdown(from, SHUT_RD);
}

int relay(int listen_port, int upstream_port, int delay_ms) {
  ::signal(SIGPIPE, SIG_IGN);
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int yes = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(listen_port));
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 128) != 0) {
    std::perror("relay: listen");
    return 1;
  }
  for (;;) {
    const int client = ::accept(listener, nullptr, nullptr);
    if (client < 0) continue;
    const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in target = address;
    target.sin_port = htons(static_cast<std::uint16_t>(upstream_port));
    if (::connect(upstream, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
      ::close(client);
      ::close(upstream);
      continue;
    }
    auto both = std::make_shared<std::atomic<int>>(2);
    const auto run = [both, client, upstream](int a, int b, int delay) {
      pump(a, b, delay);
      if (--*both == 0) {
        ::close(client);
        ::close(upstream);
      }
    };
    std::thread(run, client, upstream, delay_ms).detach();
    std::thread(run, upstream, client, delay_ms).detach();
  }
}

// ---- the run ----

class Run {
 public:
  explicit Run(Options options) : options_(std::move(options)), random_(options_.seed) {}

  ~Run() {
    daemon_.reset();
    server_.reset();
    relay_.reset();
    if (!namespace_.empty()) {
      test::run({"/usr/sbin/ip", "netns", "del", namespace_});
    }
  }

  int go() {
    set_up_network();
    write_configs();
    start_server();
    auto added = test::run({options_.bin + "/stargate-server", "client", "add", "--config",
                            dir_.file("server.toml"), "--tenant", "chaos", "--process-types",
                            "order", "--secret-file", dir_.file("secret")});
    if (added.exit_code != 0) return fail("client add: " + added.err);
    write_daemon_config(added.out.substr(0, added.out.find('\n')));
    start_relay();
    start_daemon();

    const auto started = Clock::now();
    deadline_ = started + options_.limit;
    std::vector<std::thread> submitters;
    for (int k = 0; k < options_.submitters; ++k) {
      submitters.emplace_back([this, k] { submit_all(k); });
    }
    std::thread killer([this] { kill_repeatedly(); });
    for (auto& thread : submitters)
      thread.join();
    submitting_ = false;
    say("submissions done in " + seconds_since(started) + " (daemon killed " +
        std::to_string(daemon_kills_) + " times so far); waiting for every acknowledged " +
        "request to complete");
    const std::size_t completed = wait_for_completion();
    all_completed_ = true;
    killer.join();
    return verdict(started, completed);
  }

 private:
  int fail(const std::string& why) {
    say("cannot run: " + why);
    return 2;
  }

  static std::string seconds_since(Clock::time_point start) {
    return std::to_string(
               std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count()) +
           " s";
  }

  std::vector<std::string> in_namespace(std::vector<std::string> argv) const {
    if (namespace_.empty()) return argv;
    argv.insert(argv.begin(), {"/usr/sbin/ip", "netns", "exec", namespace_});
    return argv;
  }

  // A network namespace of its own: its loopback carries daemon <-> relay <-> server, and
  // its nftables drop `loss` percent of packets. Unix sockets (the daemon's API) are not
  // namespaced, so submitters outside reach the daemon as usual.
  void set_up_network() {
    // Namespaces left by runs that were killed before they could remove theirs.
    auto listed = test::run({"/usr/sbin/ip", "netns", "list"});
    std::istringstream names(listed.out);
    for (std::string name; names >> name;) {
      if (name.rfind("sgchaos-", 0) != 0) continue;
      const auto pid = std::atoi(name.c_str() + 8);
      if (pid > 0 && ::kill(pid, 0) != 0) test::run({"/usr/sbin/ip", "netns", "del", name});
    }
    const std::string name = "sgchaos-" + std::to_string(::getpid());
    auto added = test::run({"/usr/sbin/ip", "netns", "add", name});
    if (added.exit_code != 0) {
      say("network faults skipped: cannot create a network namespace (" +
          (added.err.empty() ? std::string("ip netns add failed") : added.err.substr(0, 200)) +
          "); the relay still delays");
      server_port_ = free_port();
      relay_port_ = free_port();
      return;
    }
    namespace_ = name;
    test::run({"/usr/sbin/ip", "netns", "exec", name, "/usr/sbin/ip", "link", "set", "lo", "up"});
    server_port_ = 18080;
    relay_port_ = 18081;
    if (options_.loss > 0) {
      const std::string rules =
          "table inet chaos {\n chain out {\n  type filter hook output priority 0;\n"
          "  numgen random mod 100 < " +
          std::to_string(options_.loss) + " drop\n }\n}\n";
      test::write_file(dir_.file("chaos.nft"), rules);
      auto loaded = test::run(
          {"/usr/sbin/ip", "netns", "exec", name, "/usr/sbin/nft", "-f", dir_.file("chaos.nft")});
      if (loaded.exit_code != 0) {
        say("packet loss skipped: nft failed (" + loaded.err.substr(0, 200) + ")");
        loss_active_ = false;
      } else {
        loss_active_ = true;
      }
    }
  }

  void write_configs() {
    test::write_file(dir_.file("server.toml"),
                     "[server]\nlisten = \"127.0.0.1:" + std::to_string(server_port_) +
                         "\"\nstate_dir = \"" + dir_.file("server") +
                         "\"\n[engine]\nworkers = 2\n[order]\nstep_duration = \"5ms\"\n"
                         "default_stock = 100000000\n[rate_limit]\nper_minute = 10000000\n"
                         "burst = 1000000\n");
  }

  void write_daemon_config(const std::string& client_id) {
    test::write_file(
        dir_.file("stargated.toml"),
        "[gateway]\nurl = \"http://127.0.0.1:" + std::to_string(relay_port_) +
            "\"\n[credentials]\nclient_id = \"" + client_id + "\"\nclient_secret_file = \"" +
            dir_.file("secret") + "\"\n[queue]\npath = \"" + dir_.file("daemon/queue.db") +
            "\"\nretry_initial = \"100ms\"\nretry_max = \"1s\"\n[socket]\npath = \"" + socket_ +
            "\"\n[polling]\nfast_interval = \"200ms\"\nbackoff_initial = "
            "\"200ms\"\nbackoff_max = \"1s\"\n");
  }

  // Starts a program and waits for `ready` in the part of its log written by this start.
  std::unique_ptr<test::Child> start(const std::vector<std::string>& argv, const std::string& log,
                                     const std::string& ready) {
    const std::size_t before = test::read_file(log).size();
    auto child = std::make_unique<test::Child>(in_namespace(argv), std::vector<std::string>{}, log);
    if (!test::wait_until(
            [&] { return test::read_file(log).find(ready, before) != std::string::npos; }, 60s)) {
      say("did not start: " + argv.front() + "\n" + test::read_file(log).substr(before));
      std::exit(2);
    }
    return child;
  }

  void start_server() {
    server_ =
        start({options_.bin + "/stargate-server", "serve", "--config", dir_.file("server.toml")},
              dir_.file("server.log"), " listening on ");
  }

  void start_daemon() {
    daemon_ = start({options_.bin + "/stargated", "--config", dir_.file("stargated.toml")},
                    dir_.file("daemon.log"), " ready: ");
  }

  void start_relay() {
    relay_ = std::make_unique<test::Child>(
        in_namespace({self_path(), "--relay", std::to_string(relay_port_),
                      std::to_string(server_port_), std::to_string(options_.delay_ms)}),
        std::vector<std::string>{}, dir_.file("relay.log"));
  }

  std::string client_id(int submitter, int n) const {
    return "s" + std::to_string(submitter) + "-" + std::to_string(n);
  }

  // Submits this submitter's share in order; a request is acknowledged when the daemon
  // answers 202 (queued) or 200 (it already had it: the answer to an earlier try was lost
  // with a killed daemon). Until then the same id is tried again.
  void submit_all(int submitter) {
    const json data =
        json::parse(R"({"orderId":"ORD-1","items":[{"sku":"SKU-001","quantity":1}]})");
    for (int n = submitter; n < options_.submissions; n += options_.submitters) {
      const std::string id = client_id(submitter, n);
      while (Clock::now() < deadline_) {
        bool acknowledged = false;
        if (submitter == 0) {
          auto result = test::run({options_.bin + "/stargate", "--socket", socket_, "submit",
                                   "order", "--data", data.dump(), "--id", id},
                                  {}, "", 30s);
          acknowledged = result.exit_code == 0;
        } else {
          httplib::Client client(socket_);
          client.set_address_family(AF_UNIX);
          client.set_default_headers({{"Host", "localhost"}});
          client.set_read_timeout(30s);
          auto res = client.Post(
              "/v1/processes",
              json{{"processType", "order"}, {"clientProcessId", id}, {"data", data}}.dump(),
              "application/json");
          acknowledged = res && (res->status == 202 || res->status == 200);
        }
        if (acknowledged) {
          std::lock_guard lock(mutex_);
          acknowledged_[submitter].push_back(id);
          break;
        }
        std::this_thread::sleep_for(100ms);
      }
    }
  }

  // SIGKILL the daemon at random moments, and every few times the server too, until both
  // counts are reached: half of the kills at most while the submitters run, the others
  // spread over the sending and polling that follow (on a slow path that is most of the
  // run), each once the daemon has completed its share of what is left since the last one.
  // Killing by the clock alone would, on a slow path, spend every kill before the daemon
  // had sent much.
  void kill_repeatedly() {
    std::uniform_int_distribution<int> pause_ms(200, 1200);
    const int every = std::max(1, options_.daemon_kills / std::max(1, options_.server_kills));
    const auto more_to_do = [this] {
      return daemon_kills_ < options_.daemon_kills || server_kills_ < options_.server_kills;
    };
    std::size_t completed_at_kill = 0;
    while (Clock::now() < deadline_ && more_to_do()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(random_)));
      if (submitting_ && daemon_kills_ >= options_.daemon_kills / 2) {
        std::this_thread::sleep_for(100ms);
        continue;
      }
      if (!submitting_) {
        const int kills_left = std::max(1, options_.daemon_kills - daemon_kills_);
        const std::size_t total = options_.submissions;
        const std::size_t left = total > completed_at_kill ? total - completed_at_kill : 0;
        const std::size_t share = std::max<std::size_t>(1, left / (kills_left + 1));
        // Once everything is complete the remaining kills come on the clock.
        while (!all_completed_ && Clock::now() < deadline_ &&
               daemon_completed() < completed_at_kill + share) {
          std::this_thread::sleep_for(100ms);
        }
      }
      completed_at_kill = daemon_completed();
      daemon_->stop(SIGKILL);
      ++daemon_kills_;
      if (daemon_kills_ % every == 0 && server_kills_ < options_.server_kills) {
        server_->stop(SIGKILL);
        ++server_kills_;
        start_server();
      }
      start_daemon();
    }
  }

  // How many requests the daemon's queue records as completed (0 while it cannot be read).
  std::size_t daemon_completed() {
    try {
      db::Database queue(dir_.file("daemon/queue.db"), 1000, db::Database::Mode::kReadOnly);
      auto rows = queue.prepare("SELECT count(*) FROM requests WHERE state = 'completed'");
      return rows.step() ? static_cast<std::size_t>(rows.integer(0)) : 0;
    } catch (const std::exception&) {
      return 0;
    }
  }

  std::size_t wait_for_completion() {
    std::vector<std::string> all;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [submitter, ids] : acknowledged_)
        all.insert(all.end(), ids.begin(), ids.end());
    }
    httplib::Client client(socket_);
    client.set_address_family(AF_UNIX);
    client.set_default_headers({{"Host", "localhost"}});
    std::set<std::string> done;
    // However slow the path, the daemon keeps sending: wait while it makes progress (up to
    // --limit), and give up only after five minutes without any.
    auto progress_at = Clock::now();
    while (done.size() < all.size() && Clock::now() < deadline_ &&
           Clock::now() - progress_at < 5min) {
      const std::size_t before = done.size();
      for (const auto& id : all) {
        if (done.count(id) != 0) continue;
        auto res = client.Get("/v1/processes/" + id);
        if (res && res->status == 200 && json::parse(res->body).value("state", "") == "completed") {
          done.insert(id);
        }
      }
      if (done.size() > before) progress_at = Clock::now();
      if (done.size() < all.size()) std::this_thread::sleep_for(1s);
    }
    return done.size();
  }

  // The server's store, read as it is: each clientProcessId's processes, in creation order;
  // and the daemon's queue, for what it still holds. Lost: acknowledged, and in neither.
  int verdict(Clock::time_point started, std::size_t completed) {
    std::set<std::string> queued;
    {
      db::Database queue(dir_.file("daemon/queue.db"), 5000, db::Database::Mode::kReadOnly);
      auto rows = queue.prepare("SELECT client_process_id FROM requests");
      while (rows.step())
        queued.insert(rows.text(0));
    }
    std::map<std::string, std::vector<std::int64_t>> created;
    std::map<std::string, std::string> status;
    {
      db::Database store(dir_.file("server/stargate-server.db"), 5000,
                         db::Database::Mode::kReadOnly);
      auto rows =
          store.prepare("SELECT client_process_id, seq, status FROM processes ORDER BY seq");
      while (rows.step()) {
        created[rows.text(0)].push_back(rows.integer(1));
        status[rows.text(0)] = rows.text(2);
      }
    }
    std::size_t acknowledged = 0, lost = 0, duplicated = 0, out_of_order = 0, unfinished = 0;
    for (const auto& [submitter, ids] : acknowledged_) {
      std::int64_t last = 0;
      for (const auto& id : ids) {
        ++acknowledged;
        const auto it = created.find(id);
        if (it == created.end() && queued.count(id) == 0) {
          ++lost;
          continue;
        }
        if (it == created.end() || status[id] != "completed") {
          ++unfinished;  // still on its way: the run ended first
          continue;
        }
        if (it->second.front() < last) ++out_of_order;
        last = it->second.front();
      }
    }
    // Any request the server created twice, acknowledged or not, ran twice.
    for (const auto& [id, seqs] : created) {
      if (seqs.size() > 1) ++duplicated;
    }
    say(std::to_string(options_.submissions) + " submissions by " +
        std::to_string(options_.submitters) + " submitters (1 CLI, " +
        std::to_string(options_.submitters - 1) + " on the socket at once); daemon killed " +
        std::to_string(daemon_kills_) + " times, server " + std::to_string(server_kills_) +
        " times; " +
        (loss_active_ ? std::to_string(options_.loss) + "% packet loss each way, "
                      : std::string("no packet loss, ")) +
        std::to_string(options_.delay_ms) + " ms delay each way; seed " +
        std::to_string(options_.seed));
    say("acknowledged " + std::to_string(acknowledged) + ", lost " + std::to_string(lost) +
        ", duplicated " + std::to_string(duplicated) + ", out of order " +
        std::to_string(out_of_order) + " (completed " + std::to_string(completed) +
        ", unfinished " + std::to_string(unfinished) + ") in " + seconds_since(started));
    const bool ok = lost == 0 && duplicated == 0 && out_of_order == 0 && unfinished == 0 &&
                    acknowledged == static_cast<std::size_t>(options_.submissions) &&
                    daemon_kills_ >= options_.daemon_kills &&
                    server_kills_ >= options_.server_kills;
    if (!ok || options_.keep) {
      // Out of the temporary directory's way, so that it outlives the run.
      const std::string kept = dir_.path() + "-kept";
      std::error_code ignored;
      std::filesystem::rename(dir_.path(), kept, ignored);
      say("logs and databases kept in " + kept);
    }
    return ok ? 0 : 1;
  }

  Options options_;
  std::mt19937 random_;
  test::TempDir dir_;
  std::string socket_ = dir_.file("stargated.sock");
  std::string namespace_;
  bool loss_active_ = false;
  int server_port_ = 0;
  int relay_port_ = 0;
  std::unique_ptr<test::Child> server_, daemon_, relay_;
  Clock::time_point deadline_;
  std::atomic<int> daemon_kills_{0};
  std::atomic<bool> submitting_{true};
  std::atomic<bool> all_completed_{false};
  std::atomic<int> server_kills_{0};
  std::mutex mutex_;
  std::map<int, std::vector<std::string>> acknowledged_;
};

int usage() {
  std::fprintf(stderr,
               "usage: stargate-chaos [--submissions N] [--submitters N] [--daemon-kills N]\n"
               "         [--server-kills N] [--loss PERCENT] [--delay-ms MS] [--seed N]\n"
               "         [--bin DIR] [--limit SECONDS] [--keep]\n");
  return 2;
}

}  // namespace
}  // namespace stargate::chaos

int main(int argc, char** argv) {
  using namespace stargate::chaos;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 4 && args[0] == "--relay") {
    return relay(std::stoi(args[1]), std::stoi(args[2]), std::stoi(args[3]));
  }
  Options options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) std::exit(usage());
      return args[++i];
    };
    const std::string& arg = args[i];
    try {
      if (arg == "--submissions")
        options.submissions = std::stoi(value());
      else if (arg == "--submitters")
        options.submitters = std::max(2, std::stoi(value()));
      else if (arg == "--daemon-kills")
        options.daemon_kills = std::stoi(value());
      else if (arg == "--server-kills")
        options.server_kills = std::stoi(value());
      else if (arg == "--loss")
        options.loss = std::stoi(value());
      else if (arg == "--delay-ms")
        options.delay_ms = std::stoi(value());
      else if (arg == "--seed")
        options.seed = static_cast<unsigned>(std::stoul(value()));
      else if (arg == "--bin")
        options.bin = value();
      else if (arg == "--limit")
        options.limit = std::chrono::seconds(std::stoi(value()));
      else if (arg == "--keep")
        options.keep = true;
      else
        return usage();
    } catch (const std::exception&) {
      return usage();
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  Run run(options);
  return run.go();
}
