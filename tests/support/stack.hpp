// Test support: the whole StarGate path on one machine, with the real binaries: a
// stargate-server on a free loopback port, a provisioned client, a stargated with a private
// socket, and a way to run the stargate CLI against it.
#pragma once

#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/engines.hpp"
#include "tests/support/process.hpp"

namespace stargate::test {

// The [redis] prefix of a scale-out stack's programs.
inline constexpr const char* kRedisPrefix = "sg-e2e";

struct StackOptions {
  std::string step_duration = "100ms";  // each step of the order handler
  std::string fast_interval = "100ms";  // daemon polling
  std::string server_settings;          // lines inside [server] of server.toml
  std::string server_extra;             // appended to server.toml (further tables)
  std::string gateway_scheme = "http";
  std::string gateway_settings;  // lines inside [gateway] of stargated.toml
  std::string daemon_extra;      // appended to stargated.toml (after [polling])
  std::string socket_settings;   // lines inside [socket] of stargated.toml
  bool start_daemon = true;
  // Scale-out: a real redis-server and MongoDB-compatible server started by the stack,
  // `gateways` processes of `stargate-server gateway` (the first is port()) and `workers`
  // of `stargate-server worker` instead of one `serve`.
  bool scale_out = false;
  int gateways = 2;
  int workers = 2;
  std::string lease = "3s";
  bool redis_aof_always = false;
};

class Stack {
 public:
  explicit Stack(StackOptions options = {});
  ~Stack();

  // Starts the server (again) on the same port and store.
  void start_server();
  // Starts it without waiting for it to listen; the caller checks what happened.
  std::unique_ptr<Child> spawn_server(const std::vector<std::string>& extra_args = {});
  // Stops by PID and returns the exit status (128 + signal when killed).
  int stop_server(int signal = SIGTERM);
  // Starts stargated; `gateway_port` sends it elsewhere than the server (a FaultProxy).
  // `extra_env` and `listen_fd` (socket activation) go to the daemon's process.
  void start_daemon(int gateway_port = 0, const std::vector<std::string>& extra_env = {},
                    int listen_fd = -1);
  Child* daemon() { return daemon_.get(); }
  int stop_daemon(int signal = SIGTERM);

  // Runs `stargate-server args... --config SERVER_TOML` (an admin command).
  RunResult admin(std::vector<std::string> args);
  // Runs `stargate --socket SOCKET args...`.
  RunResult cli(const std::vector<std::string>& args, const std::string& input = "",
                const std::vector<std::string>& extra_env = {});

  // Scale-out only.
  int gateway_port(std::size_t i) const { return gateway_ports_.at(i); }
  Child* gateway(std::size_t i) { return i == 0 ? server_.get() : gateways_.at(i - 1).get(); }
  Child* worker(std::size_t i) { return workers_.at(i).get(); }
  void start_worker(std::size_t i);
  int stop_worker(std::size_t i, int signal = SIGTERM);
  std::string worker_log(std::size_t i) const {
    return read_file(dir_.file("worker" + std::to_string(i) + ".log"));
  }
  RedisServer& redis() { return *redis_; }
  MongoServer& mongo() { return *mongo_; }

  const TempDir& dir() const { return dir_; }
  int port() const { return port_; }
  const std::string& socket() const { return socket_; }
  const std::string& client_id() const { return client_id_; }
  std::string client_secret() const;
  // The server's process, while it runs.
  Child* server() { return server_.get(); }
  std::string server_log() const { return read_file(dir_.file("server.log")); }
  std::string daemon_log() const { return read_file(dir_.file("daemon.log")); }

 private:
  StackOptions options_;
  TempDir dir_;
  int port_ = 0;
  int daemon_port_ = 0;  // where the daemon sends requests, when not port_
  std::string socket_;
  std::string client_id_;
  std::unique_ptr<Child> server_;
  std::unique_ptr<Child> daemon_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<MongoServer> mongo_;
  std::vector<int> gateway_ports_;
  std::vector<std::unique_ptr<Child>> gateways_;  // beyond the first (server_)
  std::vector<std::unique_ptr<Child>> workers_;
  std::unique_ptr<Child> spawn_gateway(std::size_t i, int port);
};

// Sends SIGHUP to `child`; true once the log at `log_path`, past what it held before,
// says `line` (within 10 s).
bool sighup_and_see(Child& child, const std::string& log_path, const std::string& line);

}  // namespace stargate::test
