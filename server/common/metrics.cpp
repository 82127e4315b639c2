// Prometheus text format (version 0.0.4).
#include "server/common/metrics.hpp"

#include <cstdio>

#include "shared/ids.hpp"

namespace stargate::server {
namespace {

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

// Label values here come from our own route table, process types and tenant names, which
// are restricted to [a-z0-9_-:/]; escaping is still applied as the format asks.
std::string escape(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void Histogram::observe(double seconds) {
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++counts_[i];
  }
  ++count_;
  sum_ += seconds;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    out += name + "_bucket{" + labels + "le=\"" + number(kBuckets[i]) + "\"} " +
           std::to_string(counts_[i]) + "\n";
  }
  out += name + "_bucket{" + labels + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  const std::string plain = labels.empty() ? "" : "{" + labels.substr(0, labels.size() - 1) + "}";
  out += name + "_sum" + plain + " " + number(sum_) + "\n";
  out += name + "_count" + plain + " " + std::to_string(count_) + "\n";
}

std::string route_label(const std::string& path) {
  static const std::string kProcesses = "/api/stargate/processes";
  if (path == kProcesses || path == "/oauth/token" || path == "/health/live" ||
      path == "/health/ready" || path == "/metrics" || path == kProcesses + "/changes") {
    return path;
  }
  if (path.rfind(kProcesses + "/", 0) == 0) {
    std::string rest = path.substr(kProcesses.size() + 1);
    std::string suffix;
    if (const auto slash = rest.find('/'); slash != std::string::npos) {
      suffix = rest.substr(slash);
      rest.resize(slash);
    }
    if (is_process_id(rest) && (suffix.empty() || suffix == "/retry")) {
      return kProcesses + "/:id" + suffix;
    }
  }
  return "other";
}

void Metrics::request(const std::string& method, const std::string& route, int status,
                      double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{method.size() <= 8 ? method : "OTHER", route, status}];
  latency_[route].observe(seconds);
}

void Metrics::rate_limited(const std::string& tenant) {
  std::lock_guard lock(mutex_);
  ++refusals_[tenant];
}

void Metrics::client_auth_refused(const std::string& outcome) {
  std::lock_guard lock(mutex_);
  ++auth_refusals_[outcome];
}

void Metrics::handler_finished(const std::string& process_type, bool ok, double seconds) {
  std::lock_guard lock(mutex_);
  ++outcomes_[{process_type, ok}];
  handler_latency_[process_type].observe(seconds);
}

std::string Metrics::render(const std::string& gauges) const {
  std::lock_guard lock(mutex_);
  std::string out;
  header(out, "stargate_http_requests_total", "counter", "HTTP requests answered.");
  for (const auto& [key, count] : requests_) {
    const auto& [method, route, status] = key;
    out += "stargate_http_requests_total{method=\"" + escape(method) + "\",route=\"" +
           escape(route) + "\",status=\"" + std::to_string(status) + "\"} " +
           std::to_string(count) + "\n";
  }
  header(out, "stargate_http_request_duration_seconds", "histogram",
         "Time to answer an HTTP request.");
  for (const auto& [route, histogram] : latency_) {
    histogram.render(out, "stargate_http_request_duration_seconds",
                     "route=\"" + escape(route) + "\",");
  }
  header(out, "stargate_rate_limit_refusals_total", "counter",
         "Requests refused with 429, by tenant.");
  for (const auto& [tenant, count] : refusals_) {
    out += "stargate_rate_limit_refusals_total{tenant=\"" + escape(tenant) + "\"} " +
           std::to_string(count) + "\n";
  }
  header(out, "stargate_client_auth_refusals_total", "counter",
         "Token requests whose client authentication did not succeed, by outcome.");
  for (const auto& [outcome, count] : auth_refusals_) {
    out += "stargate_client_auth_refusals_total{outcome=\"" + escape(outcome) + "\"} " +
           std::to_string(count) + "\n";
  }
  header(out, "stargate_handler_runs_total", "counter",
         "Handler runs that ended, by process type and outcome.");
  for (const auto& [key, count] : outcomes_) {
    out += "stargate_handler_runs_total{process_type=\"" + escape(key.first) + "\",outcome=\"" +
           (key.second ? "completed" : "failed") + "\"} " + std::to_string(count) + "\n";
  }
  header(out, "stargate_handler_duration_seconds", "histogram",
         "Time a handler took to run a process.");
  for (const auto& [type, histogram] : handler_latency_) {
    histogram.render(out, "stargate_handler_duration_seconds",
                     "process_type=\"" + escape(type) + "\",");
  }
  out += gauges;
  return out;
}

}  // namespace stargate::server
