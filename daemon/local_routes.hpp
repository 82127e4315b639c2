// The socket API's routes (INTERFACES.md, /v1/...), independent of the transport: a request
// goes in, a response comes out through a callback, at once or (for wait) later.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/local_requests.hpp"
#include "daemon/queue.hpp"
#include "shared/errors.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace stargate::daemon {

struct LocalRequest {
  std::string method;
  std::string target;  // path and query, e.g. /v1/processes?state=queued
  std::string content_type;
  std::string body;
};

struct LocalResponse {
  LocalResponse() = default;
  LocalResponse(int status_code, nlohmann::json json)
      : status(status_code), body(std::move(json)) {}

  int status = 200;
  nlohmann::json body;
  std::string text;  // when set, sent instead of `body` (metrics)
  std::string content_type = "application/json";
};

using Respond = std::function<void(LocalResponse)>;

class LocalRoutes {
 public:
  LocalRoutes(boost::asio::io_context& io, Queue& queue, Dispatcher& dispatcher,
              const Gateway& gateway, const DaemonConfig& config);
  ~LocalRoutes();

  // Must be called on the loop's thread; `respond` is called exactly once, on that thread.
  void handle(const LocalRequest& request, Respond respond);

  // A record changed: answer the waits on it that are now done.
  void changed(const std::string& client_process_id);

  // At shutdown: answers every pending wait with the current record and every submission
  // not yet committed with 503, and waits for a commit under way to finish.
  void release_waiters();

  // The largest request body accepted (the data of one request, plus a little).
  static constexpr std::size_t kMaxBody = kMaxLocalBody;

  // The routes, as the socket API's OpenAPI document (docs/openapi/stargated.json) names
  // them: method ("get", "post") and path template ("/v1/processes/{id}"). handle()
  // dispatches through this table and nothing else.
  struct Route {
    std::string method;
    std::string path;
  };
  static std::vector<Route> routes();

 private:
  struct Waiter;
  // What a route's handler is given: the request, its query, and the {id} of its path.
  struct Call {
    const LocalRequest& request;
    const std::map<std::string, std::string>& query;
    std::string id;
  };
  struct Entry {
    const char* method;  // "GET" or "POST"
    const char* path;
    void (*run)(LocalRoutes& routes, const Call& call, Respond& respond);
  };
  static const std::vector<Entry>& table();
  void flush(Respond& respond);
  struct PendingSubmit {
    NewRequest request;
    Respond respond;
  };
  void submit(const LocalRequest& request, Respond& respond);
  // Commits the submissions waiting, if no commit is under way (group commit: while one
  // transaction syncs, the next batch gathers).
  void commit_submits();
  void cancel(const std::string& id, Respond& respond);
  void retry(const std::string& id, Respond& respond);
  void get(const std::string& id, Respond& respond);
  void list(const std::map<std::string, std::string>& query, Respond& respond);
  void wait(const std::string& id, const std::map<std::string, std::string>& query,
            Respond& respond);
  // local_views.cpp: what operators look at.
  void queue_view(Respond& respond);
  void health(Respond& respond);
  void metrics(Respond& respond);

  boost::asio::io_context& io_;
  Queue& queue_;
  Dispatcher& dispatcher_;
  const Gateway& gateway_;
  const DaemonConfig& config_;
  std::multimap<std::string, std::shared_ptr<Waiter>> waiters_;
  std::unique_ptr<boost::asio::thread_pool> writer_;  // commits submissions off the loop
  std::vector<PendingSubmit> pending_submits_;
  bool committing_ = false;
  bool stopping_ = false;
};

// The error answer of the socket API ({error, message, timestamp}).
LocalResponse local_error(ErrorCode code, const std::string& message);

}  // namespace stargate::daemon
