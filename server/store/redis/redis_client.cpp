#include "server/store/redis/redis_client.hpp"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <cstdio>

namespace stargate::server::redis {
namespace {

constexpr auto kReconnectPause = std::chrono::seconds(1);
constexpr std::size_t kMostPipelined = 256;  // calls in one pipeline

Reply convert(const redisReply* reply) {
  Reply out;
  switch (reply->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.text.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.text.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = reply->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      for (std::size_t i = 0; i < reply->elements; ++i)
        out.elements.push_back(convert(reply->element[i]));
      break;
    default:
      break;
  }
  return out;
}

// One command on a connection, arguments binary-safe; nullptr when the connection broke.
redisReply* run_command(redisContext* context, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data()));
}

std::string sha1_hex(const std::string& text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  char hex[2 * SHA_DIGEST_LENGTH + 1];
  for (int i = 0; i < SHA_DIGEST_LENGTH; ++i)
    std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  return hex;
}

}  // namespace

struct Client::Connection {
  redisContext* context = nullptr;
  std::uint64_t number = 0;  // in the order they were made, from 1
  ~Connection() {
    if (context != nullptr) redisFree(context);
  }
};

std::string Client::key(std::string_view name) const {
  std::string full = endpoint_.prefix;
  full += ':';
  full += name;
  return full;
}

Client::Client(Endpoint endpoint, std::chrono::milliseconds timeout, std::size_t connections)
    : endpoint_(std::move(endpoint)),
      timeout_(timeout),
      max_idle_(connections),
      pipeline_(
          [this](std::vector<const std::vector<std::string>*>& calls) {
            return run_pipeline(calls);
          },
          kMostPipelined) {}

Client::~Client() = default;

Expected<std::unique_ptr<Client::Connection>> Client::connect() {
  {
    std::lock_guard lock(mutex_);
    if (std::chrono::steady_clock::now() - last_failure_ < kReconnectPause) {
      return fail(last_error_);
    }
  }
  timeval limit{};
  limit.tv_sec = static_cast<time_t>(timeout_.count() / 1000);
  limit.tv_usec = static_cast<suseconds_t>((timeout_.count() % 1000) * 1000);
  auto connection = std::make_unique<Connection>();
  connection->number = ++made_;
  connection->context = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, limit);
  std::string error;
  if (connection->context == nullptr) {
    error = "redis: out of memory";
  } else if (connection->context->err != 0) {
    error = "redis: " + endpoint_.host + ":" + std::to_string(endpoint_.port) + ": " +
            connection->context->errstr;
  } else {
    redisSetTimeout(connection->context, limit);
    auto setup = [&](const std::vector<std::string>& args) -> bool {
      auto* reply = run_command(connection->context, args);
      const bool ok = reply != nullptr && reply->type != REDIS_REPLY_ERROR;
      if (reply != nullptr && !ok) error = std::string("redis: ") + reply->str;
      if (reply == nullptr) error = std::string("redis: ") + connection->context->errstr;
      if (reply != nullptr) freeReplyObject(reply);
      return ok;
    };
    if (!endpoint_.password.empty() && !setup({"AUTH", endpoint_.password})) {
      error = "redis: authentication failed";
    } else if (endpoint_.database != 0 && !setup({"SELECT", std::to_string(endpoint_.database)})) {
      // error set by setup
    }
  }
  if (!error.empty()) {
    std::lock_guard lock(mutex_);
    last_failure_ = std::chrono::steady_clock::now();
    last_error_ = error;
    return fail(error);
  }
  return connection;
}

std::unique_ptr<Client::Connection> Client::take() {
  std::lock_guard lock(mutex_);
  while (!idle_.empty()) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    if (!retired(*connection)) return connection;
  }
  return nullptr;
}

// Every connection made so far: the one that broke and the others, which led to the same
// server (made before it broke or after, up to now, when it may still have been up).
void Client::broke() {
  const std::uint64_t made = made_.load();
  std::uint64_t seen = retired_.load();
  while (seen <= made && !retired_.compare_exchange_weak(seen, made + 1)) {
  }
}

bool Client::retired(const Connection& connection) const {
  return connection.number < retired_.load();
}

void Client::give_back(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(connection));
}

Expected<Reply> Client::command(const std::vector<std::string>& args) {
  auto connection = take();
  if (connection == nullptr) {
    auto made = connect();
    if (!made) return Unexpected{made.error()};
    connection = std::move(*made);
  }
  auto* reply = run_command(connection->context, args);
  if (reply == nullptr) {
    // The connection is broken (reset, timed out): drop it; the next command makes another.
    std::string error = std::string("redis: ") + connection->context->errstr;
    broke();
    return fail(error);
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    std::string error = std::string("redis: ") + std::string(reply->str, reply->len);
    freeReplyObject(reply);
    give_back(std::move(connection));
    return fail(error);
  }
  Reply out = convert(reply);
  freeReplyObject(reply);
  give_back(std::move(connection));
  return out;
}

// Every call is appended to the connection's output buffer, the buffer written whole, and
// the replies read in order. When the connection breaks, the calls not answered yet fail
// (whether Redis ran them is unknown, as for one command) and the next pipeline connects again.
std::vector<Expected<Reply>> Client::run_pipeline(
    std::vector<const std::vector<std::string>*>& calls) {
  std::vector<Expected<Reply>> out;
  out.reserve(calls.size());
  if (pipe_ != nullptr && retired(*pipe_)) pipe_.reset();
  if (pipe_ == nullptr) {
    auto made = connect();
    if (!made) {
      out.assign(calls.size(), Unexpected{made.error()});
      return out;
    }
    pipe_ = std::move(*made);
  }
  redisContext* context = pipe_->context;
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto* args : calls) {
    argv.clear();
    lengths.clear();
    for (const auto& a : *args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data());
  }
  for (std::size_t k = 0; k < calls.size(); ++k) {
    void* got = nullptr;
    if (redisGetReply(context, &got) != REDIS_OK || got == nullptr) {
      const std::string error = std::string("redis: ") + context->errstr;
      out.resize(calls.size(), Unexpected{error});
      broke();
      pipe_.reset();
      return out;
    }
    auto* reply = static_cast<redisReply*>(got);
    if (reply->type == REDIS_REPLY_ERROR) {
      out.push_back(fail(std::string("redis: ") + std::string(reply->str, reply->len)));
    } else {
      out.push_back(convert(reply));
    }
    freeReplyObject(reply);
  }
  return out;
}

Expected<Reply> Client::pipelined(const std::vector<std::string>& args) {
  return pipeline_.submit(&args);
}

Expected<Reply> Client::eval(const std::string& script, const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) {
  const std::string sha = sha1_hex(script);
  std::vector<std::string> call = {"EVALSHA", sha, std::to_string(keys.size())};
  call.insert(call.end(), keys.begin(), keys.end());
  call.insert(call.end(), args.begin(), args.end());
  auto reply = pipelined(call);
  if (reply || reply.error().find("NOSCRIPT") == std::string::npos) return reply;
  // Not loaded yet (or Redis restarted and forgot it): load it and try once more.
  if (auto loaded = command({"SCRIPT", "LOAD", script}); !loaded) return loaded;
  return pipelined(call);
}

}  // namespace stargate::server::redis
