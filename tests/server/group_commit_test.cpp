// The group commit that the MongoDB store writes its processes and audit records through,
// and the Redis client its pipelined scripts: every caller gets the outcome of its own item,
// a batch never exceeds its bound, and a writer that throws fails its own batch only
// (before, its callers and every later one waited for ever). With a linger, a writer waits
// for its batch to be as large as the last ones, and no longer than the linger.
#include "server/store/group_commit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
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

// A commit whose writer records the size of each batch, and holds the first one until
// several_at_once() lets it go: the callers arriving meanwhile make the second batch, so
// that the recent batches held several items.
class Recorded {
 public:
  explicit Recorded(std::chrono::microseconds linger, bool hold_first = true)
      : released_(!hold_first),
        commit_(
            [this](std::vector<int>& batch) {
              std::unique_lock lock(mutex_);
              sizes_.push_back(batch.size());
              changed_.notify_all();
              changed_.wait(lock, [&] { return released_; });
              return std::vector<int>(batch.begin(), batch.end());
            },
            0, linger) {}

  int submit(int item) { return commit_.submit(item); }
  std::vector<std::size_t> sizes() {
    std::lock_guard lock(mutex_);
    return sizes_;
  }
  // Returns the size of the second batch (at least 2).
  std::size_t several_at_once() {
    std::vector<std::thread> callers;
    callers.emplace_back([this] { EXPECT_EQ(submit(0), 0); });
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return !sizes_.empty(); });
    }
    for (int n = 1; n <= 4; ++n)
      callers.emplace_back([this, n] { EXPECT_EQ(submit(n), n); });
    std::this_thread::sleep_for(200ms);  // for the four to queue behind the held batch
    {
      std::lock_guard lock(mutex_);
      released_ = true;
      changed_.notify_all();
    }
    for (auto& caller : callers)
      caller.join();
    const auto made = sizes();
    EXPECT_EQ(made.size(), 2u);
    return made.size() == 2 ? made[1] : 0;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::size_t> sizes_;
  bool released_;
  GroupCommit<int, int> commit_;  // last: its writer uses the members above
};

TEST(GroupCommit, ALingeringWriterWaitsForAsManyAsTheLastBatchHeld) {
  Recorded commit(60s);
  const std::size_t several = commit.several_at_once();
  ASSERT_GE(several, 2u);
  // One caller alone lingers for the others; they arrive later, one after the other.
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> callers;
  callers.emplace_back([&] { EXPECT_EQ(commit.submit(10), 10); });
  std::this_thread::sleep_for(50ms);
  for (std::size_t n = 1; n < several; ++n) {
    callers.emplace_back([&, n] { EXPECT_EQ(commit.submit(static_cast<int>(10 + n)), 10 + n); });
    std::this_thread::sleep_for(5ms);
  }
  for (auto& caller : callers)
    caller.join();
  EXPECT_EQ(commit.sizes(), (std::vector<std::size_t>{1, several, several}));
  // Written when full, not when the minute was up.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
}

TEST(GroupCommit, ALingeringWriterWritesWhatItHasWhenTheLingerIsUp) {
  Recorded commit(100ms);
  const std::size_t several = commit.several_at_once();
  ASSERT_GE(several, 2u);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(commit.submit(7), 7);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms) << "it did not linger";
  EXPECT_EQ(commit.sizes().back(), 1u);
}

TEST(GroupCommit, CallersOneAtATimeWaitForNobody) {
  Recorded commit(60s, /*hold_first=*/false);
  const auto start = std::chrono::steady_clock::now();
  for (int n = 0; n < 20; ++n)
    EXPECT_EQ(commit.submit(n), n);
  EXPECT_EQ(commit.sizes(), std::vector<std::size_t>(20, 1));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s) << "a lone caller lingered";
}

}  // namespace
}  // namespace stargate::server
