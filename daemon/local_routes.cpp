// Socket API routes.
#include "daemon/local_routes.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "daemon/log_fields.hpp"
#include "shared/errors.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"
#include "shared/text.hpp"
#include "shared/version.hpp"

namespace stargate::daemon {

namespace asio = boost::asio;

namespace {

constexpr int kMaxWaitSeconds = 3600;
constexpr int kDefaultWaitSeconds = 30;

LocalResponse error(ErrorCode code, const std::string& message) {
  return local_error(code, message);
}

LocalResponse store_error(const std::string& message) {
  spdlog::error("{}", message);
  return error(ErrorCode::kInternalError, "queue error: " + message);
}

// Reads a small non-negative integer parameter: `fallback` when absent, -1 when malformed or
// above `max`.
int int_param(const std::map<std::string, std::string>& query, const std::string& name,
              int fallback, int max) {
  const auto it = query.find(name);
  if (it == query.end()) return fallback;
  const auto& text = it->second;
  if (text.empty() || text.size() > 6 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  const int value = std::stoi(text);
  return value > max ? -1 : value;
}

}  // namespace

struct LocalRoutes::Waiter {
  explicit Waiter(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
  Respond respond;
  bool done = false;
};

LocalResponse local_error(ErrorCode code, const std::string& message) {
  return {http_status(code),
          error_body({code, message, std::nullopt}, format_timestamp(now_utc()), "")};
}

LocalRoutes::LocalRoutes(boost::asio::io_context& io, Queue& queue, Dispatcher& dispatcher,
                         const Gateway& gateway, const DaemonConfig& config)
    : io_(io),
      queue_(queue),
      dispatcher_(dispatcher),
      gateway_(gateway),
      config_(config),
      writer_(std::make_unique<asio::thread_pool>(1)) {}

LocalRoutes::~LocalRoutes() {
  release_waiters();
}

void LocalRoutes::handle(const LocalRequest& request, Respond respond) {
  const auto question = request.target.find('?');
  const std::string path = request.target.substr(0, question);
  auto query = parse_query(question == std::string::npos
                               ? std::string_view()
                               : std::string_view(request.target).substr(question + 1));
  if (!query) {
    respond(error(ErrorCode::kInvalidRequest, "Malformed query string"));
    return;
  }
  // A path matches a template segment by segment; "{id}" takes any one segment.
  const auto segments = [](std::string_view text) {
    std::vector<std::string_view> parts;
    for (std::size_t start = 1; start <= text.size();) {
      const auto end = std::min(text.find('/', start), text.size());
      parts.push_back(text.substr(start, end - start));
      start = end + 1;
    }
    return parts;
  };
  const auto asked = segments(path);
  for (const Entry& entry : table()) {
    if (request.method != entry.method) continue;
    const auto wanted = segments(entry.path);
    if (wanted.size() != asked.size()) continue;
    std::string id;
    bool same = true;
    for (std::size_t i = 0; i < wanted.size() && same; ++i) {
      if (wanted[i] == "{id}") {
        id = std::string(asked[i]);
      } else {
        same = wanted[i] == asked[i];
      }
    }
    if (!same) continue;
    if (std::string_view(entry.path).find("{id}") != std::string_view::npos && !is_safe_id(id)) {
      respond(error(ErrorCode::kNotFound, "No such process: the id is malformed"));
      return;
    }
    entry.run(*this, Call{request, *query, std::move(id)}, respond);
    return;
  }
  respond(error(ErrorCode::kNotFound, "No such endpoint: " + escape_text(request.method, 16) + " " +
                                          escape_text(path, 100)));
}

const std::vector<LocalRoutes::Entry>& LocalRoutes::table() {
  static const std::vector<Entry> entries = {
      {"POST", "/v1/processes",
       [](LocalRoutes& r, const Call& c, Respond& respond) { r.submit(c.request, respond); }},
      {"GET", "/v1/processes",
       [](LocalRoutes& r, const Call& c, Respond& respond) { r.list(c.query, respond); }},
      {"GET", "/v1/processes/{id}",
       [](LocalRoutes& r, const Call& c, Respond& respond) { r.get(c.id, respond); }},
      {"GET", "/v1/processes/{id}/wait",
       [](LocalRoutes& r, const Call& c, Respond& respond) { r.wait(c.id, c.query, respond); }},
      {"POST", "/v1/processes/{id}/cancel",
       [](LocalRoutes& r, const Call& c, Respond& respond) { r.cancel(c.id, respond); }},
      {"POST", "/v1/processes/{id}/retry",
       [](LocalRoutes& r, const Call& c, Respond& respond) { r.retry(c.id, respond); }},
      {"GET", "/v1/queue",
       [](LocalRoutes& r, const Call&, Respond& respond) { r.queue_view(respond); }},
      {"POST", "/v1/queue/flush",
       [](LocalRoutes& r, const Call&, Respond& respond) { r.flush(respond); }},
      {"GET", "/v1/health",
       [](LocalRoutes& r, const Call&, Respond& respond) { r.health(respond); }},
      {"GET", "/v1/metrics",
       [](LocalRoutes& r, const Call&, Respond& respond) { r.metrics(respond); }},
  };
  return entries;
}

std::vector<LocalRoutes::Route> LocalRoutes::routes() {
  std::vector<Route> out;
  for (const Entry& entry : table()) {
    std::string method = entry.method;
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.push_back({std::move(method), entry.path});
  }
  return out;
}

void LocalRoutes::flush(Respond& respond) {
  dispatcher_.flush();
  respond({202, {{"flushing", true}}});
}

void LocalRoutes::submit(const LocalRequest& request, Respond& respond) {
  auto decoded = decode_local_submit(request.content_type, request.body);
  if (!decoded) {
    respond(local_error(decoded.error().code, decoded.error().message));
    return;
  }
  NewRequest item = std::move(*decoded);
  // Once a token told us what this client may submit, refuse other types at once rather
  // than queue something the gateway will reject.
  if (const auto granted = gateway_.granted_types();
      !granted.empty() &&
      std::find(granted.begin(), granted.end(), item.process_type) == granted.end()) {
    std::string list;
    for (const auto& type : granted)
      list += (list.empty() ? "" : ", ") + type;
    respond(error(ErrorCode::kInvalidRequest, "Unknown process type '" + item.process_type +
                                                  "': this client may submit " + list));
    return;
  }
  if (stopping_) {
    respond(error(ErrorCode::kServiceUnavailable, "stargated is stopping"));
    return;
  }
  pending_submits_.push_back({std::move(item), std::move(respond)});
  commit_submits();
}

void LocalRoutes::commit_submits() {
  if (committing_ || pending_submits_.empty() || stopping_) return;
  committing_ = true;
  auto batch = std::make_shared<std::vector<PendingSubmit>>();
  batch->swap(pending_submits_);
  asio::post(*writer_, [this, batch] {
    std::vector<NewRequest> requests;
    for (const auto& pending : *batch)
      requests.push_back(pending.request);
    auto results =
        std::make_shared<std::vector<Expected<EnqueueResult>>>(queue_.enqueue_batch(requests));
    // Back on the loop: the batch is on disk, so every one of them may be acknowledged.
    asio::post(io_, [this, batch, results] {
      committing_ = false;
      bool queued = false;
      for (std::size_t i = 0; i < batch->size(); ++i) {
        auto& result = (*results)[i];
        auto& respond = (*batch)[i].respond;
        if (!result) {
          respond(store_error(result.error()));
          continue;
        }
        auto json = to_json(result->record);
        if (result->existed) {
          json["existing"] = true;
          respond({200, json});
          continue;
        }
        LogScope logging(request_log_fields(result->record.client_process_id));
        spdlog::info("queued {} ({})", result->record.client_process_id,
                     result->record.process_type);
        respond({202, json});
        queued = true;
      }
      if (queued) dispatcher_.kick();
      commit_submits();
    });
  });
}

void LocalRoutes::cancel(const std::string& id, Respond& respond) {
  auto record = queue_.get(id);
  if (!record) return respond(store_error(record.error()));
  if (!record->has_value()) return respond(error(ErrorCode::kNotFound, "No such process: " + id));
  if (auto cancelled = dispatcher_.cancel(id); !cancelled) {
    return respond(error(ErrorCode::kConflict,
                         "Cannot cancel " + id + " (" + std::string(to_string((*record)->state)) +
                             "): only a request still queued can be cancelled; " +
                             cancelled.error()));
  }
  auto now = queue_.get(id);
  if (!now || !now->has_value()) return respond(store_error("record vanished"));
  respond({200, to_json(**now)});
}

void LocalRoutes::retry(const std::string& id, Respond& respond) {
  dispatcher_.retry(id, [this, id, respond = std::move(respond)](std::optional<ApiError> failure) {
    if (failure) {
      respond(error(failure->code, failure->message));
      return;
    }
    auto record = queue_.get(id);
    if (!record || !record->has_value()) return respond(store_error("record vanished"));
    respond({202, to_json(**record)});
  });
}

void LocalRoutes::get(const std::string& id, Respond& respond) {
  auto record = queue_.get(id);
  if (!record) return respond(store_error(record.error()));
  if (!record->has_value()) return respond(error(ErrorCode::kNotFound, "No such process: " + id));
  respond({200, to_json(**record)});
}

void LocalRoutes::list(const std::map<std::string, std::string>& query, Respond& respond) {
  ListFilter filter;
  if (const auto it = query.find("state"); it != query.end()) {
    filter.state = parse_local_state(it->second);
    if (!filter.state) {
      return respond(error(ErrorCode::kInvalidRequest,
                           "Parameter 'state' must be one of queued, accepted, processing, "
                           "completed, failed, rejected, cancelled"));
    }
  }
  if (const auto it = query.find("processType"); it != query.end()) {
    if (!is_process_type_name(it->second)) {
      return respond(error(ErrorCode::kInvalidRequest, "Parameter 'processType' is malformed"));
    }
    filter.process_type = it->second;
  }
  const int limit = int_param(query, "limit", 100, 10000);
  if (limit <= 0) {
    return respond(error(ErrorCode::kInvalidRequest, "Parameter 'limit' must be 1-10000"));
  }
  filter.limit = static_cast<std::size_t>(limit);
  auto records = queue_.list(filter);
  if (!records) return respond(store_error(records.error()));
  nlohmann::json items = nlohmann::json::array();
  for (const auto& record : *records)
    items.push_back(to_json(record));
  respond({200, {{"processes", items}}});
}

void LocalRoutes::wait(const std::string& id, const std::map<std::string, std::string>& query,
                       Respond& respond) {
  const int timeout = int_param(query, "timeout", kDefaultWaitSeconds, kMaxWaitSeconds);
  if (timeout < 0) {
    return respond(error(ErrorCode::kInvalidRequest,
                         "Parameter 'timeout' must be 0-" + std::to_string(kMaxWaitSeconds)));
  }
  auto record = queue_.get(id);
  if (!record) return respond(store_error(record.error()));
  if (!record->has_value()) return respond(error(ErrorCode::kNotFound, "No such process: " + id));
  if (is_terminal((*record)->state) || timeout == 0) return respond({200, to_json(**record)});

  auto waiter = std::make_shared<Waiter>(io_);
  waiter->respond = std::move(respond);
  waiters_.emplace(id, waiter);
  waiter->timer.expires_after(std::chrono::seconds(timeout));
  waiter->timer.async_wait([this, id, waiter](const boost::system::error_code& ec) {
    if (ec || waiter->done) return;
    waiter->done = true;
    for (auto it = waiters_.lower_bound(id); it != waiters_.upper_bound(id); ++it) {
      if (it->second == waiter) {
        waiters_.erase(it);
        break;
      }
    }
    LocalResponse response{200, {}};
    if (auto now = queue_.get(id); now && now->has_value()) {
      response.body = to_json(**now);
    } else {
      response = error(ErrorCode::kNotFound, "No such process: " + id);
    }
    waiter->respond(std::move(response));
  });
}

void LocalRoutes::changed(const std::string& id) {
  const auto range = waiters_.equal_range(id);
  if (range.first == range.second) return;
  auto record = queue_.get(id);
  if (!record || !record->has_value() || !is_terminal((*record)->state)) return;
  const auto body = to_json(**record);
  std::vector<std::shared_ptr<Waiter>> done;
  for (auto it = range.first; it != range.second; ++it)
    done.push_back(it->second);
  waiters_.erase(range.first, range.second);
  for (auto& waiter : done) {
    waiter->done = true;
    waiter->timer.cancel();
    waiter->respond({200, body});
  }
}

void LocalRoutes::release_waiters() {
  stopping_ = true;
  for (auto& pending : pending_submits_) {
    pending.respond(error(ErrorCode::kServiceUnavailable, "stargated is stopping; not queued"));
  }
  pending_submits_.clear();
  if (writer_) writer_->join();  // a commit under way finishes: it is durable either way
  auto all = std::move(waiters_);
  waiters_.clear();
  for (auto& [id, waiter] : all) {
    if (waiter->done) continue;
    waiter->done = true;
    waiter->timer.cancel();
    LocalResponse response = error(ErrorCode::kServiceUnavailable, "stargated is stopping");
    if (auto record = queue_.get(id); record && record->has_value()) {
      response = {200, to_json(**record)};
    }
    waiter->respond(std::move(response));
  }
}

}  // namespace stargate::daemon
