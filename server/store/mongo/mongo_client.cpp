#include "server/store/mongo/mongo_client.hpp"

#include <mongoc/mongoc.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include <spdlog/spdlog.h>
#include "server/store/mongo/bson_encode.hpp"

namespace stargate::server::mongo {
namespace {

std::once_flag initialised;

// The driver's own messages: its warnings into our log, its chatter (connection attempts
// every half second while a server is down) nowhere.
void log_driver(mongoc_log_level_t level, const char* domain, const char* message, void*) {
  if (level > MONGOC_LOG_LEVEL_WARNING) return;
  // Servers without sessions (FerretDB) refuse the driver's goodbye; nothing is lost.
  if (message != nullptr && std::strstr(message, "endSessions") != nullptr) return;
  spdlog::warn("mongodb driver ({}): {}", domain != nullptr ? domain : "-",
               message != nullptr ? message : "");
}

// Owns a bson_t made by libbson (a unique_ptr cannot hold it: the type is over-aligned).
class BsonPtr {
 public:
  explicit BsonPtr(bson_t* document) : document_(document) {}
  BsonPtr(BsonPtr&& other) noexcept : document_(other.document_) { other.document_ = nullptr; }
  BsonPtr(const BsonPtr&) = delete;
  ~BsonPtr() {
    if (document_ != nullptr) bson_destroy(document_);
  }
  bson_t* get() const { return document_; }

 private:
  bson_t* document_;
};

Expected<BsonPtr> to_bson(const nlohmann::json& value) {
  BsonPtr walked(bson_new());
  if (append_members(walked.get(), value)) return walked;
  const std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  bson_error_t error;
  bson_t* out = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(text.data()),
                                   static_cast<ssize_t>(text.size()), &error);
  if (out == nullptr)
    return fail(std::string("mongodb: cannot encode a document: ") + error.message);
  return BsonPtr(out);
}

nlohmann::json to_json(const bson_t* document) {
  std::size_t length = 0;
  char* text = bson_as_relaxed_extended_json(document, &length);
  if (text == nullptr) return nullptr;
  auto parsed = nlohmann::json::parse(text, text + length, nullptr, false);
  bson_free(text);
  return parsed.is_discarded() ? nlohmann::json() : parsed;
}

std::string reason(const bson_error_t& error) {
  return std::string("mongodb: ") + error.message;
}

}  // namespace

struct Client::Pool {
  mongoc_client_pool_t* pool = nullptr;
  ~Pool() {
    if (pool != nullptr) mongoc_client_pool_destroy(pool);
  }
  // One client of the pool for the time of one operation.
  struct Lease {
    mongoc_client_pool_t* pool;
    mongoc_client_t* client;
    ~Lease() { mongoc_client_pool_push(pool, client); }
  };
  Lease lease() { return {pool, mongoc_client_pool_pop(pool)}; }
};

Client::Client(std::unique_ptr<Pool> pool, std::string database, std::int32_t write_timeout_ms)
    : pool_(std::move(pool)), database_(std::move(database)), write_timeout_ms_(write_timeout_ms) {}

Client::~Client() = default;

Expected<std::unique_ptr<Client>> Client::open(const std::string& text, int timeout_ms) {
  std::call_once(initialised, [] {
    mongoc_log_set_handler(log_driver, nullptr);
    mongoc_init();
  });
  bson_error_t error;
  mongoc_uri_t* uri = mongoc_uri_new_with_error(text.c_str(), &error);
  if (uri == nullptr) return fail("mongodb: bad connection string: " + std::string(error.message));
  for (const char* option : {MONGOC_URI_SERVERSELECTIONTIMEOUTMS, MONGOC_URI_CONNECTTIMEOUTMS}) {
    if (!mongoc_uri_has_option(uri, option))
      mongoc_uri_set_option_as_int32(uri, option, timeout_ms);
  }
  // A server that accepts but does not answer (stopped, swapping, a network that drops
  // packets) must cost a request seconds, not minutes: each operation waits at most this
  // long for its reply, and the majority acknowledgement of a write a second less.
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS)) {
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 5 * timeout_ms / 2);
  }
  const std::int32_t socket_timeout =
      mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 5 * timeout_ms / 2);
  const std::int32_t write_timeout = std::max(socket_timeout - 1000, socket_timeout / 2);
  const char* named = mongoc_uri_get_database(uri);
  std::string database = named != nullptr && *named != '\0' ? named : "stargate";
  auto pool = std::make_unique<Pool>();
  pool->pool = mongoc_client_pool_new_with_error(uri, &error);
  mongoc_uri_destroy(uri);
  if (pool->pool == nullptr) return fail(reason(error));
  mongoc_client_pool_set_error_api(pool->pool, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_set_appname(pool->pool, "stargate-server");
  return std::unique_ptr<Client>(new Client(std::move(pool), std::move(database), write_timeout));
}

nlohmann::json Client::write_concern() const {
  return {{"w", "majority"}, {"j", true}, {"wtimeout", write_timeout_ms_}};
}

Expected<nlohmann::json> Client::command(const std::string& name, const nlohmann::json& value,
                                         const nlohmann::json& rest) {
  auto request = to_bson(nlohmann::json{{name, value}});
  if (!request) return Unexpected{request.error()};
  auto fields = to_bson(rest);
  if (!fields) return Unexpected{fields.error()};
  bson_concat(request->get(), fields->get());
  auto lease = pool_->lease();
  bson_t reply;
  bson_error_t error;
  const bool ok = mongoc_client_command_simple(lease.client, database_.c_str(), request->get(),
                                               nullptr, &reply, &error);
  nlohmann::json answer = to_json(&reply);
  bson_destroy(&reply);
  if (!ok) return fail(reason(error));
  return answer;
}

namespace {

Status concern_met(const nlohmann::json& reply) {
  if (const auto concern = reply.find("writeConcernError"); concern != reply.end()) {
    return fail("mongodb: write concern not met: " +
                concern->value("errmsg", std::string("no reason given")));
  }
  return {};
}

}  // namespace

Expected<WriteResult> Client::write(const std::string& name, const std::string& collection,
                                    nlohmann::json rest) {
  rest["writeConcern"] = write_concern();
  auto reply = command(name, collection, rest);
  if (!reply) return Unexpected{reply.error()};
  WriteResult result;
  result.n = reply->value("n", std::int64_t{0});
  result.modified = reply->value("nModified", std::int64_t{0});
  if (const auto errors = reply->find("writeErrors"); errors != reply->end()) {
    for (const auto& e : *errors) {
      if (e.value("code", 0) != 11000) {
        return fail("mongodb: " + e.value("errmsg", std::string("write refused")));
      }
      result.duplicate_key = true;
      if (const auto index = e.find("index"); index != e.end() && index->is_number_unsigned()) {
        result.duplicates.push_back(index->get<std::size_t>());
      }
    }
  }
  if (auto met = concern_met(*reply); !met) return Unexpected{met.error()};
  return result;
}

Expected<nlohmann::json> Client::find_and_modify(const std::string& collection,
                                                 nlohmann::json rest) {
  rest["writeConcern"] = write_concern();
  auto reply = command("findAndModify", collection, rest);
  if (!reply) return Unexpected{reply.error()};
  if (auto met = concern_met(*reply); !met) return Unexpected{met.error()};
  return reply->value("value", nlohmann::json());
}

namespace {

Status drain(mongoc_cursor_t* cursor, const std::function<void(nlohmann::json&)>& sink) {
  const bson_t* document = nullptr;
  while (mongoc_cursor_next(cursor, &document)) {
    nlohmann::json value = to_json(document);
    sink(value);
  }
  bson_error_t error;
  const bool failed = mongoc_cursor_error(cursor, &error);
  mongoc_cursor_destroy(cursor);
  if (failed) return fail(reason(error));
  return {};
}

}  // namespace

Status Client::find(const std::string& collection, const nlohmann::json& filter,
                    const nlohmann::json& options,
                    const std::function<void(nlohmann::json&)>& sink) {
  auto query = to_bson(filter);
  if (!query) return Unexpected{query.error()};
  auto opts = to_bson(options.is_null() ? nlohmann::json::object() : options);
  if (!opts) return Unexpected{opts.error()};
  auto lease = pool_->lease();
  mongoc_collection_t* coll =
      mongoc_client_get_collection(lease.client, database_.c_str(), collection.c_str());
  mongoc_cursor_t* cursor =
      mongoc_collection_find_with_opts(coll, query->get(), opts->get(), nullptr);
  auto status = drain(cursor, sink);
  mongoc_collection_destroy(coll);
  return status;
}

Status Client::aggregate(const std::string& collection, const nlohmann::json& pipeline,
                         const std::function<void(nlohmann::json&)>& sink) {
  auto stages = to_bson(nlohmann::json{{"pipeline", pipeline}});
  if (!stages) return Unexpected{stages.error()};
  auto lease = pool_->lease();
  mongoc_collection_t* coll =
      mongoc_client_get_collection(lease.client, database_.c_str(), collection.c_str());
  mongoc_cursor_t* cursor =
      mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, stages->get(), nullptr, nullptr);
  auto status = drain(cursor, sink);
  mongoc_collection_destroy(coll);
  return status;
}

}  // namespace stargate::server::mongo
