// The fault-injecting proxy, on cpp-httplib.
#include "tests/support/fault_proxy.hpp"

#include <httplib.h>

namespace stargate::test {

struct FaultProxy::Impl {
  httplib::Server server;
  std::thread thread;
  int upstream_port = 0;
  Decide decide;
  mutable std::mutex mutex;
  std::vector<Seen> seen;

  void handle(const httplib::Request& req, httplib::Response& res) {
    const auto fault = decide(req.method, req.path);
    {
      std::lock_guard lock(mutex);
      seen.push_back({req.method, req.path, std::chrono::steady_clock::now(), fault.has_value()});
    }
    if (fault) {
      res.status = fault->status;
      if (!fault->retry_after.empty()) res.set_header("Retry-After", fault->retry_after);
      if (!fault->body.empty()) {
        res.set_content(fault->body, "application/json");
      } else if (fault->body_bytes > 0) {
        res.set_content(std::string(fault->body_bytes, ' '), "application/json");
      } else {
        res.set_content(R"({"error":"SERVICE_UNAVAILABLE","message":"injected by the test"})",
                        "application/json");
      }
      return;
    }
    httplib::Client upstream("127.0.0.1", upstream_port);
    httplib::Headers headers;
    for (const auto& [name, value] : req.headers) {
      if (name != "Host" && name != "Content-Length" && name != "REMOTE_ADDR" &&
          name != "REMOTE_PORT" && name != "LOCAL_ADDR" && name != "LOCAL_PORT") {
        headers.emplace(name, value);
      }
    }
    const std::string target = req.target.empty() ? req.path : req.target;
    httplib::Result answer =
        req.method == "POST"
            ? upstream.Post(target, headers, req.body, req.get_header_value("Content-Type"))
            : upstream.Get(target, headers);
    if (!answer) {
      res.status = 502;
      return;
    }
    res.status = answer->status;
    for (const auto& [name, value] : answer->headers) {
      if (name != "Content-Length" && name != "Content-Type") res.set_header(name, value);
    }
    res.set_content(answer->body, answer->get_header_value("Content-Type"));
  }
};

FaultProxy::FaultProxy(int upstream_port, Decide decide) : impl_(std::make_unique<Impl>()) {
  impl_->upstream_port = upstream_port;
  impl_->decide = std::move(decide);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    impl_->handle(req, res);
  };
  impl_->server.Get(".*", handler);
  impl_->server.Post(".*", handler);
  port_ = impl_->server.bind_to_any_port("127.0.0.1");
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

FaultProxy::~FaultProxy() {
  impl_->server.stop();
  impl_->thread.join();
}

std::vector<FaultProxy::Seen> FaultProxy::seen() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->seen;
}

}  // namespace stargate::test
