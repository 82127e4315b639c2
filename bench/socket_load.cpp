// Load generator for stargated's socket API (wrk cannot speak to Unix sockets): N threads,
// each with its own kept-alive connection, POST new requests for a fixed time and report
// the rate and latency percentiles. Built only with -DSTARGATE_BENCH=ON (bench/daemon.sh).
// Usage: stargate-socket-load SOCKET THREADS SECONDS [PREFIX]
//        stargate-socket-load SOCKET THREADS --count N [PREFIX]
//   With --count, exactly N requests are sent (ids PREFIX-0 ... PREFIX-(N-1)).
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

int main(int argc, char** argv) {
  if (argc < 4 || argc > 6) {
    std::fprintf(stderr, "usage: %s SOCKET THREADS (SECONDS | --count N) [PREFIX]\n", argv[0]);
    return 2;
  }
  const std::string socket = argv[1];
  const int threads = std::atoi(argv[2]);
  const bool counted = std::string(argv[3]) == "--count";
  const long total = counted ? std::atol(argv[4]) : 0;
  const std::string prefix = argc > (counted ? 5 : 4) ? argv[counted ? 5 : 4] : "load";
  const auto duration = std::chrono::seconds(counted ? 3600 : std::atoi(argv[3]));
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + duration;
  std::atomic<long> next{0};
  std::mutex mutex;
  std::vector<double> latencies;  // milliseconds
  std::atomic<long> errors{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      httplib::Client client(socket);
      client.set_address_family(AF_UNIX);
      client.set_keep_alive(true);
      client.set_default_headers({{"Host", "localhost"}});
      std::vector<double> mine;
      for (long i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
        std::string id;
        if (counted) {
          const long n = next++;
          if (n >= total) break;
          id = prefix + "-" + std::to_string(n);
        } else {
          id = prefix + "-" + std::to_string(t) + "-" + std::to_string(i) + "-" +
               std::to_string(std::rand());
        }
        const std::string body =
            R"({"processType":"order","clientProcessId":")" + id +
            R"(","data":{"orderId":"ORD-1","items":[{"sku":"A","quantity":1}]}})";
        const auto start = std::chrono::steady_clock::now();
        auto res = client.Post("/v1/processes", body, "application/json");
        const auto took =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        if (!res || res->status != 202) {
          ++errors;
          continue;
        }
        mine.push_back(took);
      }
      std::lock_guard lock(mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (auto& worker : workers)
    worker.join();
  std::sort(latencies.begin(), latencies.end());
  const auto percentile = [&](double p) {
    if (latencies.empty()) return 0.0;
    return latencies[std::min(latencies.size() - 1,
                              static_cast<std::size_t>(p * static_cast<double>(latencies.size())))];
  };
  // "requests/s p50 p99 errors", like bench/lib.sh's wrk_figures.
  const double seconds =
      counted ? std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
              : static_cast<double>(duration.count());
  std::printf("%.0f %.2f %.2f %ld\n", static_cast<double>(latencies.size()) / seconds,
              percentile(0.50), percentile(0.99), errors.load());
  return 0;
}
