// Test support: the real engines of the scale-out backend, started on free loopback ports
// in a test's own directory and stopped by PID. redis-server comes from Debian. The
// MongoDB-compatible server is a real mongod when STARGATE_TEST_MONGODB_URI names one (each
// MongoServer then uses a database of its own on it), otherwise FerretDB with its SQLite
// handler, as scripts/bootstrap builds it. Nothing is skipped: when an engine cannot be
// started, ok() is false and error() says why, for the test to fail with.
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.hpp"

namespace stargate::test {

class RedisServer {
 public:
  // `aof_always`: append-only file fsync'd on every write (the durability tests);
  // `password`: required of clients (requirepass) when not empty.
  explicit RedisServer(const std::string& dir, bool aof_always = false, std::string password = "");
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;

  bool ok() const { return child_ != nullptr; }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const;

  // Stops it (SIGTERM, or SIGKILL when `kill`) and starts it again on the same port and
  // data directory; false when it did not come back.
  void stop(bool kill = false);
  bool start();

 private:
  std::string dir_;
  bool aof_always_;
  std::string password_;
  int port_ = 0;
  std::unique_ptr<Child> child_;
  std::string error_;
};

class MongoServer {
 public:
  // With `user` and `password`, clients must authenticate as that user (SCRAM, FerretDB's
  // authentication with the user made at its start; a real mongod must be set up so by
  // whoever points STARGATE_TEST_MONGODB_URI at it). uri() names no user either way.
  explicit MongoServer(const std::string& dir, std::string user = "", std::string password = "");
  ~MongoServer();
  MongoServer(const MongoServer&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  // A connection string with this server's own database.
  const std::string& uri() const { return uri_; }
  // Whether this is a FerretDB the test started (which it can stop and start again).
  bool own_process() const { return external_.empty(); }
  pid_t pid() const;
  void stop(bool kill = false);
  bool start();

  // The FerretDB program the tests use: $STARGATE_FERRETDB, or where scripts/bootstrap
  // puts it.
  static std::string ferretdb_program();

 private:
  std::string dir_;
  std::string external_;  // STARGATE_TEST_MONGODB_URI
  std::string user_;
  std::string password_;
  int port_ = 0;
  bool ok_ = false;
  std::string uri_;
  std::unique_ptr<Child> child_;
  std::string error_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
// Whether process `pid` has a socket listening on 127.0.0.1:port.
bool listens_on(pid_t pid, int port);
// Whether something accepts TCP connections on 127.0.0.1:port.
bool accepts_connections(int port);

}  // namespace stargate::test
