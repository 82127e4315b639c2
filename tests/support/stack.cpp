// The test stack.
#include "tests/support/stack.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <stdexcept>

namespace stargate::test {

Stack::Stack(StackOptions options) : options_(std::move(options)) {
  socket_ = dir_.file("run/stargated.sock");
  std::string backend;
  if (options_.scale_out) {
    redis_ = std::make_unique<RedisServer>(dir_.file("redis"), options_.redis_aof_always);
    if (!redis_->ok()) throw std::runtime_error(redis_->error());
    mongo_ = std::make_unique<MongoServer>(dir_.file("mongo"));
    if (!mongo_->ok()) throw std::runtime_error(mongo_->error());
    // Not the default [redis] prefix: every scale-out test runs the programs with one.
    backend = "[store]\nbackend = \"redis+mongo\"\n[redis]\nurl = \"" + redis_->url() +
              "\"\nprefix = \"" + std::string(kRedisPrefix) + "\"\n[mongo]\nuri = \"" +
              mongo_->uri() + "\"\n[engine]\nlease = \"" + options_.lease + "\"\n";
  }
  write_file(dir_.file("server.toml"),
             "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"" + dir_.file("server") + "\"\n" +
                 options_.server_settings + "\n[order]\nstep_duration = \"" +
                 options_.step_duration + "\"\n[shipping]\nstep_duration = \"" +
                 options_.step_duration + "\"\n" + backend + options_.server_extra);
  start_server();
  if (options_.scale_out) {
    gateway_ports_.push_back(port_);
    for (int i = 1; i < options_.gateways; ++i) {
      const std::string port_file = dir_.file("gateway" + std::to_string(i) + ".port");
      gateways_.push_back(spawn_gateway(static_cast<std::size_t>(i), 0));
      if (!wait_until([&] { return read_file(port_file).find('\n') != std::string::npos; },
                      std::chrono::seconds(30))) {
        throw std::runtime_error("gateway " + std::to_string(i) + " did not start");
      }
      gateway_ports_.push_back(std::stoi(read_file(port_file)));
    }
    workers_.resize(static_cast<std::size_t>(options_.workers));
    for (std::size_t i = 0; i < workers_.size(); ++i)
      start_worker(i);
  }
  auto added = run({binary("stargate-server"), "client", "add", "--config",
                    dir_.file("server.toml"), "--tenant", "acme", "--process-types",
                    "order,shipping", "--secret-file", dir_.file("client_secret")});
  if (added.exit_code != 0) throw std::runtime_error("client add failed: " + added.err);
  client_id_ = added.out.substr(0, added.out.find('\n'));
  if (options_.start_daemon) start_daemon();
}

Stack::~Stack() {
  if (daemon_) daemon_->stop(SIGTERM);
  for (auto& worker : workers_) {
    if (worker) worker->stop(SIGTERM);
  }
  for (auto& gateway : gateways_)
    gateway->stop(SIGTERM);
  if (server_) server_->stop(SIGTERM);
}

std::unique_ptr<Child> Stack::spawn_gateway(std::size_t i, int port) {
  const std::string port_file = dir_.file("gateway" + std::to_string(i) + ".port");
  ::unlink(port_file.c_str());
  std::vector<std::string> argv = {binary("stargate-server"), "gateway",     "--config",
                                   dir_.file("server.toml"),  "--port-file", port_file};
  if (port != 0) argv.push_back("--listen=127.0.0.1:" + std::to_string(port));
  return std::make_unique<Child>(argv, std::vector<std::string>{},
                                 dir_.file("gateway" + std::to_string(i) + ".log"));
}

void Stack::start_worker(std::size_t i) {
  const std::string log = dir_.file("worker" + std::to_string(i) + ".log");
  const std::size_t before = read_file(log).size();
  workers_.at(i) =
      std::make_unique<Child>(std::vector<std::string>{binary("stargate-server"), "worker",
                                                       "--config", dir_.file("server.toml")},
                              std::vector<std::string>{}, log);
  if (!wait_until(
          [&] { return read_file(log).find(" running (store ", before) != std::string::npos; },
          std::chrono::seconds(30))) {
    throw std::runtime_error("worker " + std::to_string(i) + " did not start:\n" + read_file(log));
  }
}

int Stack::stop_worker(std::size_t i, int signal) {
  auto& worker = workers_.at(i);
  const int status = worker ? worker->stop(signal) : -1;
  worker.reset();
  return status;
}

std::unique_ptr<Child> Stack::spawn_server(const std::vector<std::string>& extra_args) {
  const std::string port_file = dir_.file("server.port");
  ::unlink(port_file.c_str());
  std::vector<std::string> argv = {binary("stargate-server"),
                                   options_.scale_out ? "gateway" : "serve",
                                   "--config",
                                   dir_.file("server.toml"),
                                   "--port-file",
                                   port_file};
  if (port_ != 0) argv.push_back("--listen=127.0.0.1:" + std::to_string(port_));
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  return std::make_unique<Child>(argv, std::vector<std::string>{}, dir_.file("server.log"));
}

void Stack::start_server() {
  const std::string port_file = dir_.file("server.port");
  server_ = spawn_server();
  if (!wait_until([&] { return read_file(port_file).find('\n') != std::string::npos; },
                  std::chrono::seconds(30))) {
    throw std::runtime_error("stargate-server did not start:\n" + server_log());
  }
  port_ = std::stoi(read_file(port_file));
}

std::string Stack::client_secret() const {
  const auto secret = read_file(dir_.file("client_secret"));
  return secret.substr(0, secret.find('\n'));
}

int Stack::stop_server(int signal) {
  const int status = server_ ? server_->stop(signal) : -1;
  server_.reset();
  return status;
}

void Stack::start_daemon(int gateway_port, const std::vector<std::string>& extra_env,
                         int listen_fd) {
  if (gateway_port != 0) daemon_port_ = gateway_port;
  write_file(dir_.file("stargated.toml"),
             "[gateway]\nurl = \"" + options_.gateway_scheme +
                 "://127.0.0.1:" + std::to_string(daemon_port_ != 0 ? daemon_port_ : port_) +
                 "\"\n" + options_.gateway_settings + "\n[credentials]\nclient_id = \"" +
                 client_id_ + "\"\nclient_secret_file = \"" + dir_.file("client_secret") +
                 "\"\n[queue]\npath = \"" + dir_.file("daemon/queue.db") +
                 "\"\nretry_initial = \"100ms\"\nretry_max = \"500ms\"\n[socket]\npath = \"" +
                 socket_ + "\"\n" + options_.socket_settings + "\n[polling]\nfast_interval = \"" +
                 options_.fast_interval + "\"\n" + options_.daemon_extra);
  // The log is appended to across restarts; this start is ready when its own "ready" line
  // appears (a socket file may be left from a killed predecessor).
  const std::size_t log_before = daemon_log().size();
  daemon_ = std::make_unique<Child>(
      std::vector<std::string>{binary("stargated"), "--config", dir_.file("stargated.toml")},
      extra_env, dir_.file("daemon.log"), listen_fd);
  if (!wait_until([&] { return daemon_log().find(" ready: ", log_before) != std::string::npos; },
                  std::chrono::seconds(30))) {
    throw std::runtime_error("stargated did not start:\n" + daemon_log());
  }
}

int Stack::stop_daemon(int signal) {
  const int status = daemon_ ? daemon_->stop(signal) : -1;
  daemon_.reset();
  return status;
}

RunResult Stack::admin(std::vector<std::string> args) {
  args.insert(args.begin(), binary("stargate-server"));
  args.push_back("--config");
  args.push_back(dir_.file("server.toml"));
  return run(args);
}

RunResult Stack::cli(const std::vector<std::string>& args, const std::string& input,
                     const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv = {binary("stargate"), "--socket", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, extra_env, input);
}

bool sighup_and_see(Child& child, const std::string& log_path, const std::string& line) {
  const std::size_t before = read_file(log_path).size();
  ::kill(child.pid(), SIGHUP);
  return wait_until([&] { return read_file(log_path).find(line, before) != std::string::npos; },
                    std::chrono::seconds(10));
}

}  // namespace stargate::test
