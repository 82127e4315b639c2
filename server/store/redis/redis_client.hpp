// A thread-safe Redis client on hiredis (Debian's 0.14: plain TCP, no TLS): connections
// shared by the threads of one program, each command with a deadline. A thread takes an idle
// connection or makes one; up to `connections` are kept for the next commands (as many as
// threads use Redis at once, so that a busy gateway does not connect per request). A broken
// connection is dropped and made again on a later command, no more often than once a
// second, so a Redis that is down costs a quick error, not a wait per request. Every
// failure is a value: "redis: ..." with the reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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
  // EVALSHA of `script` (loaded with SCRIPT LOAD on first use, again after a restart).
  Expected<Reply> eval(const std::string& script, const std::vector<std::string>& keys,
                       const std::vector<std::string>& args);

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  struct Connection;
  std::unique_ptr<Connection> take();
  void give_back(std::unique_ptr<Connection> connection);
  Expected<std::unique_ptr<Connection>> connect();

  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  std::size_t max_idle_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::chrono::steady_clock::time_point last_failure_{};
  std::string last_error_;
};

}  // namespace stargate::server::redis
