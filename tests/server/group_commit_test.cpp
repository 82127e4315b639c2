// The group commit that the MongoDB store writes its processes and audit records through,
// and the Redis client its pipelined scripts: every caller gets the outcome of its own item,
// a batch never exceeds its bound, and a writer that throws fails its own batch only
// (before, its callers and every later one waited for ever).
#include "server/store/group_commit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace stargate::server {
namespace {

using namespace std::chrono_literals;

TEST(GroupCommit, EveryCallerGetsItsOwnOutcomeInBatchesWithinTheBound) {
  std::atomic<int> batches{0}, items{0}, largest{0};
  GroupCommit<int, int> commit(
      [&](std::vector<int>& batch) {
        ++batches;
        items += static_cast<int>(batch.size());
        largest = std::max(largest.load(), static_cast<int>(batch.size()));
        std::this_thread::sleep_for(2ms);  // a round trip, during which others queue
        std::vector<int> out;
        for (int item : batch)
          out.push_back(item * 2);
        return out;
      },
      4);
  constexpr int kCallers = 16, kEach = 20;
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        const int item = c * 1000 + i;
        if (commit.submit(item) != item * 2) ++wrong;
      }
    });
  }
  for (auto& caller : callers)
    caller.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(items, kCallers * kEach);
  EXPECT_LE(largest, 4);
  EXPECT_LT(batches, kCallers * kEach) << "no two items ever shared a write";
}

TEST(GroupCommit, AWriterThatThrowsFailsItsBatchAndTheNextOneIsWritten) {
  GroupCommit<int, int> commit(
      [](std::vector<int>& batch) {
        for (int item : batch) {
          if (item < 0) throw std::runtime_error("refused");
        }
        return std::vector<int>(batch.begin(), batch.end());
      },
      0);
  EXPECT_THROW(commit.submit(-1), std::runtime_error);
  EXPECT_EQ(commit.submit(5), 5);

  // Many callers, one of them poisoning its batch: each caller either gets its item back
  // or the exception, and none waits for ever.
  std::atomic<int> answered{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 8; ++c) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < 50; ++i) {
        const int item = (c == 3 && i == 25) ? -1 : c * 100 + i;
        try {
          if (commit.submit(item) == item) ++answered;
        } catch (const std::runtime_error&) {
          ++answered;
        }
      }
    });
  }
  for (auto& caller : callers)
    caller.join();
  EXPECT_EQ(answered, 8 * 50);
  EXPECT_EQ(commit.submit(7), 7);
}

TEST(GroupCommit, AWriterThatMiscountsItsOutcomesFailsItsBatch) {
  GroupCommit<int, int> commit([](std::vector<int>&) { return std::vector<int>{}; }, 0);
  EXPECT_THROW(commit.submit(1), std::logic_error);
}

}  // namespace
}  // namespace stargate::server
