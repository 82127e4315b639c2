// The gateway's Prometheus metrics: request counts and latencies by route, rate-limit
// refusals, handler durations, and (read from the store when scraped) processes by state
// and queue depth. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace stargate::server {

// Cumulative histogram with fixed buckets (seconds).
class Histogram {
 public:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    10};
  void observe(double seconds);
  // Appends the _bucket, _sum and _count lines; `labels` is "" or `a="b",`.
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<std::uint64_t, kBuckets.size()> counts_{};
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// Collapses a request path into a route label: process ids become ":id", and paths that
// are not routes become "other", so a scan of random URLs cannot grow the label set.
std::string route_label(const std::string& path);

class Metrics {
 public:
  void request(const std::string& method, const std::string& route, int status, double seconds);
  void rate_limited(const std::string& tenant);
  // A client authentication at the token endpoint that did not succeed: "failed" (wrong or
  // unknown credentials), "throttled" (refused unchecked) or "busy" (no check slot).
  void client_auth_refused(const std::string& outcome);
  void handler_finished(const std::string& process_type, bool ok, double seconds);

  // The text exposition format; `gauges` are appended as they are (already rendered).
  std::string render(const std::string& gauges) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, std::uint64_t> refusals_;
  std::map<std::string, std::uint64_t> auth_refusals_;
  std::map<std::pair<std::string, bool>, std::uint64_t> outcomes_;
  std::map<std::string, Histogram> handler_latency_;
};

}  // namespace stargate::server
