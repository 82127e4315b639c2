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
#include "daemon/queue.hpp"

namespace boost::asio {
class io_context;
}

namespace stargate::daemon {

struct LocalRequest {
  std::string method;
  std::string target;  // path and query, e.g. /v1/processes?state=queued
  std::string content_type;
  std::string body;
};

struct LocalResponse {
  int status = 200;
  nlohmann::json body;
};

using Respond = std::function<void(LocalResponse)>;

class LocalRoutes {
 public:
  LocalRoutes(boost::asio::io_context& io, Queue& queue, Dispatcher& dispatcher,
              const DaemonConfig& config);
  ~LocalRoutes();

  // Must be called on the loop's thread; `respond` is called exactly once, on that thread.
  void handle(const LocalRequest& request, Respond respond);

  // A record changed: answer the waits on it that are now done.
  void changed(const std::string& client_process_id);

  // Answers every pending wait with the current record (at shutdown).
  void release_waiters();

  // The largest request body accepted (the data of one request, plus a little).
  static constexpr std::size_t kMaxBody = (1 << 20) + 4096;

 private:
  struct Waiter;
  void submit(const LocalRequest& request, Respond& respond);
  void get(const std::string& id, Respond& respond);
  void list(const std::map<std::string, std::string>& query, Respond& respond);
  void wait(const std::string& id, const std::map<std::string, std::string>& query,
            Respond& respond);
  void queue_view(Respond& respond);
  void health(Respond& respond);

  boost::asio::io_context& io_;
  Queue& queue_;
  Dispatcher& dispatcher_;
  const DaemonConfig& config_;
  std::multimap<std::string, std::shared_ptr<Waiter>> waiters_;
};

// Splits "a=1&b=x%20y" into decoded pairs; std::nullopt on malformed percent-encoding.
std::optional<std::map<std::string, std::string>> parse_query(std::string_view query);

}  // namespace stargate::daemon
