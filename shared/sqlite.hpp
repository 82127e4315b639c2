// A thin RAII layer over SQLite for the server's store and the daemon's queue. Failures
// throw DbError; each store catches it at its own public boundary and returns a value.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "shared/expected.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace stargate::db {

class DbError : public std::runtime_error {
 public:
  DbError(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }  // the SQLite result code

 private:
  int code_;
};

class Statement {
 public:
  // Owns `stmt` (finalized at destruction), or borrows it from the connection's statement
  // cache when `in_use` is given (reset and handed back at destruction).
  Statement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use = nullptr)
      : db_(db), stmt_(stmt), in_use_(in_use) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const std::string& text) {
    return bind(index, std::string_view(text));
  }
  Statement& bind(int index, const std::optional<std::string>& text);
  Statement& bind(int index, std::optional<std::int64_t> value);
  Statement& bind_null(int index);

  // Advances; true while a row is available, false when done.
  bool step();
  // Runs a statement that returns no rows.
  void run();
  void reset();

  std::int64_t integer(int column) const;
  std::string text(int column) const;
  bool is_null(int column) const;
  std::optional<std::string> optional_text(int column) const;
  std::optional<std::int64_t> optional_integer(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
};

class Database {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  // Opens (creating if needed) a database in WAL mode with full fsync on commit, so that a
  // committed transaction survives a crash or power loss. kReadOnly opens an existing
  // database for reading alongside a writer (WAL lets readers and a writer work at once).
  static constexpr int kDefaultBusyTimeoutMs = 5000;

  explicit Database(const std::string& path, int busy_timeout_ms = kDefaultBusyTimeoutMs,
                    Mode mode = Mode::kReadWrite);
  Database(Database&& other) noexcept;
  Database& operator=(Database&&) = delete;
  Database(const Database&) = delete;
  ~Database();

  void exec(const std::string& sql);
  // Statements are compiled once per connection and reused; a statement already in use
  // (the same SQL nested) gets a fresh one.
  Statement prepare(std::string_view sql);
  int user_version();
  void set_user_version(int version);
  std::int64_t changes() const;
  // How long a statement waits for another connection's lock before failing with "database
  // is locked".
  void set_busy_timeout(int milliseconds);
  // Leaves checkpoints to a Checkpointer.
  void disable_autocheckpoint() { exec("PRAGMA wal_autocheckpoint=0"); }
  const std::string& path() const { return path_; }

 private:
  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };

  sqlite3* db_ = nullptr;
  std::string path_;
  // Node-based, so the `in_use` flags that borrowed statements point to stay put.
  std::unordered_map<std::string, Cached> cache_;
};

// Checkpoints a WAL database from its own thread and connection, so that the thread
// committing requests never stops to copy the log into the database (with synchronous=FULL
// that copy fsyncs, and under load it showed as 100 ms stalls). The writer connection
// should run with PRAGMA wal_autocheckpoint=0 (Database::disable_autocheckpoint()).
class Checkpointer {
 public:
  Checkpointer(std::string path, std::chrono::milliseconds interval);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;

 private:
  void loop();

  std::string path_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// Runs `body` (which returns an Expected), turning a database error, or a corrupt value in
// the database (a JSON parse error, say), into an error value naming `what`.
template <typename F>
auto guarded(const char* what, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const DbError& e) {
    return fail(std::string(what) + ": " + e.what());
  } catch (const std::exception& e) {
    return fail(std::string(what) + ": corrupt data in the database: " + e.what());
  }
}

// BEGIN IMMEDIATE ... COMMIT; rolls back if destroyed before commit().
class Transaction {
 public:
  explicit Transaction(Database& db);
  Transaction(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Database& db_;
  bool done_ = false;
};

}  // namespace stargate::db
