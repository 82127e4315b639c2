// A thread-safe Redis client on hiredis (Debian's 0.14: plain TCP, no TLS): connections
// shared by the threads of one program, each command with a deadline. A thread takes an idle
// connection or makes one; up to `connections` are kept for the next commands (as many as
// threads use Redis at once, so that a busy gateway does not connect per request). A broken
// connection is dropped and made again on a later command, no more often than once a
// second, so a Redis that is down costs a quick error, not a wait per request. When one
// connection breaks, every connection made so far is dropped too before its next use
// (Redis restarted: they all lead to the server that is gone), so that an outage costs one
// failed command, not one per connection kept. Every
// failure is a value: "redis: ..." with the reason.
//
// Scripts are pipelined: the scripts of every thread that calls eval() while a pipeline is
// on its way go together in the next one, on a connection of their own, written at once and
// answered in order (group commit, as the MongoDB store writes its documents). A busy
// gateway's rate-limit, revocation and queue scripts then cost Redis and the gateway one
// write and one read for many requests rather than one each. A script never blocks, so none
// waits behind another's wait; command() (which may block, XREADGROUP) is not pipelined.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "server/store/group_commit.hpp"
#include "server/store/redis/redis_url.hpp"
#include "shared/expected.hpp"

struct redisContext;

namespace stargate::server::redis {

struct Reply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus } type = Type::kNil;
  std::string text;  // string or status
  std::int64_t integer = 0;
  std::vector<Reply> elements;
};

class Client {
 public:
  explicit Client(Endpoint endpoint, std::chrono::milliseconds timeout = std::chrono::seconds(1),
                  std::size_t connections = 64);
  ~Client();
  Client(const Client&) = delete;

  // Runs one command (binary-safe arguments). A Redis error reply is a failure too.
  Expected<Reply> command(const std::vector<std::string>& args);
  // EVALSHA of `script` (loaded with SCRIPT LOAD on first use, again after a restart),
  // pipelined with the scripts of other threads.
  Expected<Reply> eval(const std::string& script, const std::vector<std::string>& keys,
                       const std::vector<std::string>& args);

  const Endpoint& endpoint() const { return endpoint_; }
  // The name of key `name` in this deployment: "<prefix>:<name>".
  std::string key(std::string_view name) const;

 private:
  struct Connection;
  std::unique_ptr<Connection> take();
  void give_back(std::unique_ptr<Connection> connection);
  // A connection broke: it and every other connection made so far are not used again.
  void broke();
  bool retired(const Connection& connection) const;
  Expected<std::unique_ptr<Connection>> connect();
  // The pipeline's writer: every call of the batch on pipe_, in order.
  std::vector<Expected<Reply>> run_pipeline(std::vector<const std::vector<std::string>*>& calls);
  Expected<Reply> pipelined(const std::vector<std::string>& args);

  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  std::size_t max_idle_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::chrono::steady_clock::time_point last_failure_{};
  std::string last_error_;
  std::atomic<std::uint64_t> made_{0};     // connections ever made
  std::atomic<std::uint64_t> retired_{0};  // those numbered below are not used again
  std::unique_ptr<Connection> pipe_;       // only the pipeline's writer (one at a time) uses it
  GroupCommit<const std::vector<std::string>*, Expected<Reply>> pipeline_;
};

}  // namespace stargate::server::redis
