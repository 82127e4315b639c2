// The MongoDB server's own ceiling, as bench/scaleout.sh's yardstick: THREADS threads insert
// small documents with the write concern every StarGate write carries (majority, journaled)
// through the same client for SECONDS, BATCH documents per insert, and then look them up
// by _id for as long; prints "inserted/s batches/s finds/s". Built only with
// -DSTARGATE_BENCH=ON.
// Usage: stargate-mongo-load URI THREADS SECONDS BATCH
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "server/store/mongo/mongo_client.hpp"

using stargate::server::mongo::Client;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s URI THREADS SECONDS BATCH\n", argv[0]);
    return 2;
  }
  const int threads = std::atoi(argv[2]);
  const int seconds = std::atoi(argv[3]);
  const int batch = std::atoi(argv[4]);
  if (threads < 1 || seconds < 1 || batch < 1) {
    std::fprintf(stderr, "THREADS, SECONDS and BATCH must be positive\n");
    return 2;
  }
  auto client = Client::open(argv[1]);
  if (!client) {
    std::fprintf(stderr, "%s\n", client.error().c_str());
    return 1;
  }
  const std::string collection = "load_" + std::to_string(batch);
  std::atomic<long> inserted{0}, batches{0}, found{0}, failed{0};
  std::vector<long> written(static_cast<std::size_t>(threads), 0);
  const auto run = [&](auto&& body) {
    const auto end = Clock::now() + std::chrono::seconds(seconds);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (long n = 0; Clock::now() < end; ++n)
          body(t, n);
      });
    }
    for (auto& thread : pool)
      thread.join();
  };
  const std::string filler(200, 'x');
  run([&](int t, long n) {
    nlohmann::json documents = nlohmann::json::array();
    for (int k = 0; k < batch; ++k) {
      documents.push_back({{"_id", std::to_string(t) + "-" + std::to_string(n * batch + k)},
                           {"thread", t},
                           {"filler", filler}});
    }
    auto done = (*client)->write("insert", collection,
                                 {{"documents", std::move(documents)}, {"ordered", false}});
    if (!done) {
      ++failed;
      return;
    }
    inserted += done->n;
    ++batches;
    written[static_cast<std::size_t>(t)] = (n + 1) * batch;
  });
  run([&](int t, long n) {
    const long have = written[static_cast<std::size_t>(t)];
    if (have == 0) return;
    const std::string id = std::to_string(t) + "-" + std::to_string(n % have);
    if ((*client)->find(collection, {{"_id", id}}, {{"limit", 1}}, [](nlohmann::json&) {})) {
      ++found;
    } else {
      ++failed;
    }
  });
  (void)(*client)->command("drop", collection);
  std::printf("%ld %ld %ld\n", inserted / seconds, batches / seconds, found / seconds);
  if (failed > 0) std::fprintf(stderr, "%ld operations failed\n", failed.load());
  return failed > 0 ? 1 : 0;
}
