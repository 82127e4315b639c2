// Group commit: the items of every caller that arrives while a batch is being written go in
// the next batch, which the first of them writes for all of them, so that N concurrent
// writes cost about one round trip (and one journal flush) instead of N. Each caller waits
// for the outcome of its own item. No thread of its own: a batch is written by a caller.
// A written batch wakes its own callers and one caller of the next batch (its writer), not
// everyone waiting: each wakeup is a context switch, and on a busy gateway most of those
// waiting are in the next batch.
#pragma once

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

  // `max_batch`: at most this many items in one write (0: no limit).
  GroupCommit(Writer writer, std::size_t max_batch)
      : writer_(std::move(writer)), max_batch_(max_batch) {}
  GroupCommit(const GroupCommit&) = delete;

  Outcome submit(Item item) {
    Waiter mine;
    mine.item = std::move(item);
    std::unique_lock lock(mutex_);
    waiting_.push_back(&mine);
    while (!mine.outcome && !mine.error) {
      if (writing_) {
        mine.woken.wait(lock);
        continue;
      }
      writing_ = true;
      std::vector<Waiter*> batch;
      if (max_batch_ == 0 || waiting_.size() <= max_batch_) {
        batch.swap(waiting_);
      } else {
        const auto cut = waiting_.begin() + static_cast<std::ptrdiff_t>(max_batch_);
        batch.assign(waiting_.begin(), cut);
        waiting_.erase(waiting_.begin(), cut);
      }
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
};

}  // namespace stargate::server
