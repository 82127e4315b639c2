// HttpGateway: the real gateway client on cpp-httplib.
#include "daemon/gateway.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "daemon/pacer.hpp"
#include "shared/json.hpp"
#include "shared/secrets.hpp"

namespace stargate::daemon {
namespace {

constexpr const char* kProcessesPath = "/api/stargate/processes";
constexpr const char* kChangesPath = "/api/stargate/processes/changes";
constexpr const char* kFeedHeader = "X-StarGate-Feed";

// Longest the pacer holds one request back; beyond it the request goes out and the
// gateway's 429 with Retry-After takes over.
constexpr auto kMaxPacing = std::chrono::seconds(10);

struct Url {
  std::string origin;  // scheme://host[:port]
  std::string path;    // prefix, without a trailing slash
};

Expected<Url> split_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return fail("not a URL: " + url);
  const auto path_start = url.find('/', scheme_end + 3);
  if (path_start == std::string::npos) return Url{url, ""};
  std::string path = url.substr(path_start);
  while (!path.empty() && path.back() == '/')
    path.pop_back();
  return Url{url.substr(0, path_start), path};
}

// The most the daemon reads of one answer; real ones are far smaller (a status with its
// result). A gateway, or whatever answers in its place, that sends more is cut off instead
// of filling the daemon's memory, and the call counts as a transient failure.
constexpr std::size_t kMaxAnswerBytes = 8 << 20;

std::string describe(const httplib::Result& result) {
  if (!result && result.error() == httplib::Error::Canceled) {
    return "no answer: the answer was larger than " + std::to_string(kMaxAnswerBytes) + " bytes";
  }
  if (!result) return "no answer: " + httplib::to_string(result.error());
  return "HTTP " + std::to_string(result->status);
}

// Sends a request and reads at most kMaxAnswerBytes of its answer.
httplib::Result send_bounded(httplib::Client& client, const std::string& method,
                             const std::string& path, const httplib::Headers& headers,
                             std::string body = "", const char* content_type = nullptr) {
  httplib::Request request;
  request.method = method;
  request.path = path;
  request.headers = headers;
  if (content_type != nullptr) request.set_header("Content-Type", content_type);
  request.body = std::move(body);
  auto received = std::make_shared<std::string>();
  request.content_receiver = [received](const char* data, std::size_t size, std::uint64_t,
                                        std::uint64_t) {
    if (received->size() + size > kMaxAnswerBytes) return false;
    received->append(data, size);
    return true;
  };
  auto result = client.send(request);
  if (result) result->body = std::move(*received);
  return result;
}

// Keeps idle connections to one origin for reuse by whichever thread asks next.
class ClientPool {
 public:
  ClientPool(std::string origin, const GatewayConfig& config)
      : origin_(std::move(origin)), config_(config) {}

  // `read_timeout`: for a request the gateway may hold (a long poll); restored on release.
  std::unique_ptr<httplib::Client> acquire(std::optional<Duration> read_timeout = std::nullopt) {
    auto client = take();
    if (read_timeout) client->set_read_timeout(*read_timeout);
    return client;
  }

  void release(std::unique_ptr<httplib::Client> client) {
    client->set_read_timeout(config_.request_timeout);
    std::lock_guard lock(mutex_);
    if (idle_.size() < 16) idle_.push_back(std::move(client));
  }

 private:
  std::unique_ptr<httplib::Client> take() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        auto client = std::move(idle_.back());
        idle_.pop_back();
        return client;
      }
    }
    auto client = std::make_unique<httplib::Client>(origin_);
    client->set_connection_timeout(config_.connect_timeout);
    client->set_read_timeout(config_.request_timeout);
    client->set_write_timeout(config_.request_timeout);
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);
    client->enable_server_certificate_verification(true);
    if (!config_.ca_file.empty()) client->set_ca_cert_path(config_.ca_file);
    return client;
  }

  std::string origin_;
  const GatewayConfig& config_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;
};

class HttpGateway final : public Gateway {
 public:
  HttpGateway(GatewayConfig gateway, CredentialsConfig credentials, std::string secret, Url api,
              Url token)
      : gateway_(std::move(gateway)),
        credentials_(std::move(credentials)),
        secret_(std::move(secret)),
        api_(std::move(api)),
        token_url_(std::move(token)),
        api_pool_(api_.origin, gateway_),
        token_pool_(token_url_.origin, gateway_) {}

  ~HttpGateway() override {
    // Best effort: the secret should not linger in freed memory.
    std::fill(secret_.begin(), secret_.end(), '\0');
  }

  GatewayReply submit(const SubmitRequest& request) override {
    const std::string body = dump_json(to_json(request));
    return call(true, request.client_process_id,
                [&](httplib::Client& client, const httplib::Headers& headers) {
                  return send_bounded(client, "POST", api_.path + kProcessesPath, headers, body,
                                      "application/json");
                });
  }

  GatewayReply status(const std::string& process_id, const std::string& correlation_id) override {
    return call(false, correlation_id,
                [&](httplib::Client& client, const httplib::Headers& headers) {
                  return send_bounded(client, "GET", api_.path + kProcessesPath + "/" + process_id,
                                      headers);
                });
  }

  std::vector<std::string> granted_types() const override {
    std::lock_guard lock(token_mutex_);
    return granted_;
  }

  std::optional<Duration> token_valid_for() const override {
    std::lock_guard lock(token_mutex_);
    if (token_.empty()) return std::nullopt;
    const auto left = expires_at_ - std::chrono::steady_clock::now();
    return std::max(Duration::zero(), std::chrono::duration_cast<Duration>(left));
  }

  GatewayReply retry(const std::string& process_id, const std::string& correlation_id) override {
    return call(true, correlation_id,
                [&](httplib::Client& client, const httplib::Headers& headers) {
                  return send_bounded(client, "POST",
                                      api_.path + kProcessesPath + "/" + process_id + "/retry",
                                      headers, "", "application/json");
                });
  }

  GatewayReply changes(const std::string& cursor, Duration wait) override {
    // Whole pages of 500 when much changed (the most the gateway gives), and the wait as a
    // duration ("30s", "300ms").
    std::string path = api_.path + kChangesPath + "?limit=500&wait=" + format_duration(wait);
    if (!cursor.empty()) path += "&cursor=" + httplib::detail::encode_query_param(cursor);
    return call(
        false, "",
        [&](httplib::Client& client, const httplib::Headers& headers) {
          {
            std::lock_guard lock(held_mutex_);
            if (interrupted_) return httplib::Result{nullptr, httplib::Error::Connection};
            held_ = &client;
          }
          auto result = send_bounded(client, "GET", path, headers);
          std::lock_guard lock(held_mutex_);
          held_ = nullptr;
          return result;
        },
        gateway_.request_timeout + wait);
  }

  void interrupt() override {
    std::lock_guard lock(held_mutex_);
    interrupted_ = true;
    if (held_ != nullptr) held_->stop();  // shuts its socket down: the read returns at once
  }

  bool offers_feed() const override { return offers_feed_.load(); }

  Status reload_secret() override {
    auto fresh = read_client_secret(credentials_.client_secret_file);
    if (!fresh) return Unexpected{fresh.error()};
    std::lock_guard lock(token_mutex_);
    std::fill(secret_.begin(), secret_.end(), '\0');
    secret_ = std::move(*fresh);
    return {};
  }

  GatewayReply prepare() override {
    GatewayReply reply;
    if (access_token(false, reply)) reply.outcome = Outcome::kOk;
    return reply;
  }

 private:
  // What an answer says of the feed and of the tenant's rate limit.
  void learn(const httplib::Response& response) {
    if (response.status >= 200 && response.status < 300) {
      offers_feed_ = response.has_header(kFeedHeader);
    }
    if (auto rate = parse_rate_headers(response.get_header_value("X-RateLimit-Limit"),
                                       response.get_header_value("X-RateLimit-Remaining"))) {
      pacer_.observe(rate->first, rate->second, std::chrono::steady_clock::now());
    }
  }

  // Waits while the pacer says the tenant's bucket is low (at most kMaxPacing).
  void pace() {
    const auto until = std::chrono::steady_clock::now() + kMaxPacing;
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      const Duration wait = pacer_.reserve(now);
      if (wait == Duration::zero() || now >= until) return;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(wait, until - now));
    }
  }

  // Sends with a bearer token; on 401 renews the token once and sends again.
  template <typename Send>
  GatewayReply call(bool is_submit, const std::string& correlation_id, Send&& send,
                    std::optional<Duration> read_timeout = std::nullopt) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      GatewayReply reply;
      auto token = access_token(attempt > 0, reply);
      if (!token) return reply;
      httplib::Headers headers = {{"Authorization", "Bearer " + *token},
                                  {"Accept", "application/json"}};
      if (!correlation_id.empty()) headers.emplace("X-Correlation-ID", correlation_id);
      pace();
      auto client = api_pool_.acquire(read_timeout);
      auto result = send(*client, headers);
      if (result) learn(*result);
      reply = make_reply(result, is_submit);
      if (result) api_pool_.release(std::move(client));
      if (reply.outcome != Outcome::kUnauthorized) return reply;
      forget_token();
    }
    GatewayReply reply;
    reply.outcome = Outcome::kUnauthorized;
    reply.status = 401;
    reply.error = "gateway refused a freshly issued token (HTTP 401)";
    return reply;
  }

  static GatewayReply make_reply(const httplib::Result& result, bool is_submit) {
    GatewayReply reply;
    reply.status = result ? result->status : 0;
    reply.outcome = classify(reply.status, is_submit);
    reply.error = describe(result);
    if (!result) return reply;
    if (result->has_header("Retry-After")) {
      reply.retry_after = parse_retry_after(result->get_header_value("Retry-After"));
    }
    auto body = parse_json(result->body, {4 << 20, 64});
    if (body) {
      reply.body = std::move(*body);
      if (reply.outcome != Outcome::kOk && reply.body.is_object()) {
        const auto code = reply.body.find("error");
        const auto message = reply.body.find("message");
        if (code != reply.body.end() && code->is_string() && message != reply.body.end() &&
            message->is_string()) {
          reply.error += " " + code->get<std::string>() + ": " + message->get<std::string>();
        }
      }
    } else if (reply.outcome == Outcome::kOk) {
      reply.outcome = Outcome::kTransient;
      reply.error = "gateway answered with malformed JSON: " + body.error().message;
    }
    return reply;
  }

  // One token request with the secret held now (token_mutex_ held).
  httplib::Result request_token() {
    httplib::Params form = {{"grant_type", "client_credentials"},
                            {"client_id", credentials_.client_id},
                            {"client_secret", secret_}};
    if (!credentials_.scope.empty()) form.emplace("scope", credentials_.scope);
    auto client = token_pool_.acquire();
    auto result = send_bounded(*client, "POST", token_url_.path.empty() ? "/" : token_url_.path, {},
                               httplib::detail::params_to_query_str(form),
                               "application/x-www-form-urlencoded");
    if (result) token_pool_.release(std::move(client));
    return result;
  }

  // A valid token, fetching one when there is none, it is about to expire, or `renew`.
  std::optional<std::string> access_token(bool renew, GatewayReply& failure) {
    std::lock_guard lock(token_mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (!renew && !token_.empty() && now < renew_at_) return token_;
    auto result = request_token();
    // The secret was refused: it may have been rotated and its file replaced. Read the
    // file again and, when it holds another secret, ask once more with that one.
    if (result && result->status == 401) {
      if (auto fresh = read_client_secret(credentials_.client_secret_file);
          fresh && *fresh != secret_) {
        spdlog::info(
            "gateway: client secret refused; asking again with the secret now in its file");
        std::fill(secret_.begin(), secret_.end(), '\0');
        secret_ = std::move(*fresh);
        result = request_token();
      }
    }
    failure.status = result ? result->status : 0;
    failure.outcome = Outcome::kTransient;  // never reject requests for our own credentials
    if (!result || result->status != 200) {
      failure.error = "token endpoint: " + describe(result);
      if (result) {
        auto body = parse_json(result->body, {64 << 10, 8});
        if (body && body->is_object() && body->contains("error") && (*body)["error"].is_string()) {
          failure.error += " " + (*body)["error"].get<std::string>();
        }
        if (result->status == 401) {
          failure.error +=
              ": the gateway refused client " + credentials_.client_id +
              " and its secret; put the current secret in " +
              (credentials_.client_secret_file.empty() ? std::string("the client_secret credential")
                                                       : credentials_.client_secret_file) +
              " (it is read again at the next try)";
        }
        if (result->has_header("Retry-After")) {
          failure.retry_after = parse_retry_after(result->get_header_value("Retry-After"));
        }
      }
      return std::nullopt;
    }
    learn(*result);
    auto body = parse_json(result->body, {64 << 10, 8});
    if (!body) {
      failure.error = "token endpoint: malformed JSON: " + body.error().message;
      return std::nullopt;
    }
    auto answer = parse_token_answer(*body);
    if (!answer) {
      failure.error = "token endpoint: " + answer.error();
      return std::nullopt;
    }
    token_ = std::move(answer->access_token);
    // The scope granted ("process:order process:shipping") says which types may be sent.
    if (answer->process_types) granted_ = std::move(*answer->process_types);
    const std::int64_t lifetime = answer->expires_in;
    // Renew when 90% of the lifetime has passed (at least 10 s early, never in the past).
    const auto early =
        std::max<std::int64_t>(lifetime / 10, std::min<std::int64_t>(10, lifetime / 2));
    renew_at_ = now + std::chrono::seconds(lifetime - early);
    expires_at_ = now + std::chrono::seconds(lifetime);
    spdlog::info("gateway: new access token, valid {} s", lifetime);
    return token_;
  }

  void forget_token() {
    std::lock_guard lock(token_mutex_);
    token_.clear();
  }

  GatewayConfig gateway_;
  CredentialsConfig credentials_;
  std::string secret_;
  Url api_;
  Url token_url_;
  ClientPool api_pool_;
  ClientPool token_pool_;
  mutable std::mutex token_mutex_;
  std::string token_;
  std::chrono::steady_clock::time_point renew_at_{};
  std::chrono::steady_clock::time_point expires_at_{};
  std::vector<std::string> granted_;  // process types of the last token's scope
  std::atomic<bool> offers_feed_{false};
  Pacer pacer_;
  std::mutex held_mutex_;
  httplib::Client* held_ = nullptr;  // of the change-feed request being held, if any
  bool interrupted_ = false;
};

}  // namespace

Outcome classify(int status, bool is_submit) {
  if (status == 200 || status == 201 || status == 202) return Outcome::kOk;
  if (status == 401) return Outcome::kUnauthorized;
  if (status == 404 && !is_submit) return Outcome::kNotFound;
  switch (status) {
    case 400:
    case 403:
    case 409:
    case 413:
    case 415:
    case 422:
      return Outcome::kPermanent;
    default:
      // No answer, 408, 429, 5xx, and anything unexpected (a proxy's 404 or 502 while the
      // gateway is being deployed): keep the request and try again later.
      return Outcome::kTransient;
  }
}

std::optional<Duration> parse_retry_after(std::string_view value) {
  if (value.empty() || value.size() > 9 ||
      value.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  const long seconds = std::min(std::stol(std::string(value)), 86400L);
  return std::chrono::seconds(seconds);
}

Expected<std::string> read_client_secret(const std::string& configured) {
  return read_secret_file(configured, "client_secret", "client secret",
                          "no client secret: set [credentials] client_secret_file, or run under "
                          "systemd with LoadCredential=client_secret:...");
}

Expected<std::unique_ptr<Gateway>> make_http_gateway(const GatewayConfig& gateway,
                                                     const CredentialsConfig& credentials) {
  auto api = split_url(gateway.url);
  if (!api) return Unexpected{api.error()};
  auto token = split_url(gateway.token_url);
  if (!token) return Unexpected{token.error()};
  auto secret = read_client_secret(credentials.client_secret_file);
  if (!secret) return Unexpected{secret.error()};
  return std::unique_ptr<Gateway>(std::make_unique<HttpGateway>(
      gateway, credentials, std::move(*secret), std::move(*api), std::move(*token)));
}

}  // namespace stargate::daemon
