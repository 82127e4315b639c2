// A thin, thread-safe way to talk to MongoDB (libmongoc) in JSON: commands go in as JSON
// documents and replies come back as JSON, so that libmongoc and libbson stay in one
// translation unit. Numbers keep their type (int32/int64/double); times are stored as
// integers of Unix milliseconds. Every failure is a value: "mongodb: ..." with the reason.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/expected.hpp"

namespace stargate::server::mongo {

// What a write reply said beyond ok: how many matched/changed, and whether it was refused
// for a duplicate key (E11000), with the indexes of the refused documents of a batch.
struct WriteResult {
  std::int64_t n = 0;
  std::int64_t modified = 0;
  bool duplicate_key = false;
  std::vector<std::size_t> duplicates;
};

class Client {
 public:
  // `uri` is a MongoDB connection string; its database (the path) is the one used,
  // "stargate" when it names none. Unless the URI sets them, server selection and connect
  // fail after `timeout_ms`, so that an unreachable server is reported quickly, and an
  // operation whose reply does not come within 2.5 times that (socketTimeoutMS) fails, as
  // does a write not acknowledged by a majority a second before that. Fails on a
  // malformed URI; does not connect yet.
  static Expected<std::unique_ptr<Client>> open(const std::string& uri, int timeout_ms = 2000);
  ~Client();
  Client(const Client&) = delete;

  const std::string& database() const { return database_; }

  // Runs the command `name` (its value first, as MongoDB wants: the collection, or 1) with
  // the fields of `rest`, and returns the reply (ok: 1 checked).
  Expected<nlohmann::json> command(const std::string& name, const nlohmann::json& value,
                                   const nlohmann::json& rest = nlohmann::json::object());
  // insert/update/delete on `collection` with write concern majority + journal; a write
  // error other than a duplicate key is a failure.
  Expected<WriteResult> write(const std::string& name, const std::string& collection,
                              nlohmann::json rest);
  // findAndModify: the document after the change (or before, as `rest` asks), null when
  // none matched.
  Expected<nlohmann::json> find_and_modify(const std::string& collection, nlohmann::json rest);
  // Calls `sink` for every document the find returns (all batches).
  Status find(const std::string& collection, const nlohmann::json& filter,
              const nlohmann::json& options, const std::function<void(nlohmann::json&)>& sink);
  Status aggregate(const std::string& collection, const nlohmann::json& pipeline,
                   const std::function<void(nlohmann::json&)>& sink);

  // The write concern every write carries.
  nlohmann::json write_concern() const;

 private:
  struct Pool;
  Client(std::unique_ptr<Pool> pool, std::string database, std::int32_t write_timeout_ms);
  std::unique_ptr<Pool> pool_;
  std::string database_;
  std::int32_t write_timeout_ms_;
};

}  // namespace stargate::server::mongo
