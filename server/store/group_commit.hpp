// Group commit: the items of every caller that arrives while a batch is being written go in
// the next batch, which the first of them writes for all of them, so that N concurrent
// writes cost about one round trip (and one journal flush) instead of N. Each caller waits
// for the outcome of its own item. No thread of its own: a batch is written by a caller.
// A written batch wakes its own callers and one caller of the next batch (its writer), not
// everyone waiting: each wakeup is a context switch, and on a busy gateway most of those
// waiting are in the next batch.
// Lingering (for a store a round trip away): under a steady load the callers of the batch
// just written come back a moment after it, so its writer would find the next batch almost
// empty and write one or two items, and the batches alternate between small and large. A
// writer with fewer items than the recent batches held (a decaying maximum) waits up to
// `linger` for them; it writes as soon as that many are there. Callers one at a time wait
// for nobody; after a burst of N, the wanted size falls back by an eighth a batch, so the
// next dozen or so lone callers may each wait the linger.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace stargate::server {

template <typename Item, typename Outcome>
class GroupCommit {
 public:
  // Writes a batch and gives exactly one outcome per item, in their order. Should not throw:
  // if it does (or gives another number of outcomes), every caller of that batch gets the
  // exception from submit(), and the next batch is written as usual.
  using Writer = std::function<std::vector<Outcome>(std::vector<Item>&)>;

  // `max_batch`: at most this many items in one write (0: no limit). `linger`: how long a
  // writer may wait for its batch to fill (0: never).
  GroupCommit(Writer writer, std::size_t max_batch,
              std::chrono::microseconds linger = std::chrono::microseconds{0})
      : writer_(std::move(writer)), max_batch_(max_batch), linger_(linger) {}
  GroupCommit(const GroupCommit&) = delete;

  Outcome submit(Item item) {
    Waiter mine;
    mine.item = std::move(item);
    std::unique_lock lock(mutex_);
    waiting_.push_back(&mine);
    if (lingering_ && waiting_.size() >= wanted_) filled_.notify_one();
    while (!mine.outcome && !mine.error) {
      if (writing_) {
        mine.woken.wait(lock);
        continue;
      }
      writing_ = true;
      if (linger_.count() > 0 && waiting_.size() < wanted_) {
        lingering_ = true;
        filled_.wait_for(lock, linger_, [&] { return waiting_.size() >= wanted_; });
        lingering_ = false;
      }
      std::vector<Waiter*> batch;
      if (max_batch_ == 0 || waiting_.size() <= max_batch_) {
        batch.swap(waiting_);
      } else {
        const auto cut = waiting_.begin() + static_cast<std::ptrdiff_t>(max_batch_);
        batch.assign(waiting_.begin(), cut);
        waiting_.erase(waiting_.begin(), cut);
      }
      // The larger of this batch and the recent ones, falling by an eighth a batch (to 1).
      wanted_ = std::max(batch.size(), wanted_ - (wanted_ + 7) / 8);
      lock.unlock();
      std::vector<Item> items;
      items.reserve(batch.size());
      for (auto* waiter : batch)
        items.push_back(std::move(waiter->item));
      std::vector<Outcome> outcomes;
      std::exception_ptr error;
      try {
        outcomes = writer_(items);
        if (outcomes.size() != batch.size()) {
          throw std::logic_error("group commit: the writer gave " +
                                 std::to_string(outcomes.size()) + " outcomes for " +
                                 std::to_string(batch.size()) + " items");
        }
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      for (std::size_t k = 0; k < batch.size(); ++k) {
        if (error) {
          batch[k]->error = error;
        } else {
          batch[k]->outcome.emplace(std::move(outcomes[k]));
        }
        if (batch[k] != &mine) batch[k]->woken.notify_one();
      }
      writing_ = false;
      if (!waiting_.empty()) waiting_.front()->woken.notify_one();  // the next batch's writer
    }
    if (mine.error) std::rethrow_exception(mine.error);
    return std::move(*mine.outcome);
  }

 private:
  struct Waiter {
    Item item{};
    std::optional<Outcome> outcome;
    std::exception_ptr error;  // what the writer threw instead
    std::condition_variable woken;
  };
  Writer writer_;
  std::size_t max_batch_;
  std::mutex mutex_;
  std::vector<Waiter*> waiting_;
  bool writing_ = false;
  std::chrono::microseconds linger_;
  std::condition_variable filled_;  // a lingering writer's batch has filled
  bool lingering_ = false;
  std::size_t wanted_ = 0;  // the batch size a writer lingers for
};

}  // namespace stargate::server
