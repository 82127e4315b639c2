// MongoStore: process ids, in blocks of one day that each store takes as it needs them.
#include <algorithm>

#include <spdlog/spdlog.h>
#include "server/store/mongo/mongo_store.hpp"
#include "shared/ids.hpp"

namespace stargate::server {

using nlohmann::json;

// Ids come in blocks of kIdBlock numbers of one day, one block at a time for each store
// (gateway): taking a block is the insert of its document (a unique _id), which one store
// wins, so that no number is handed out twice whichever gateway makes it, and a submission
// costs no round trip for its id. A gateway that stops leaves the rest of its block unused:
// ids have gaps, never repeats. The sequence orders processes across days; within a day it
// follows the blocks, so processes of two gateways are not listed in the exact order they
// came in.
constexpr std::int64_t kIdBlock = 100;

// The first number at or after `from` whose document `exists` does not find, for numbers
// taken in order from 0 (blocks of ids, audit blocks, stock ledgers): a gallop over lookups
// by _id, which MongoDB answers from its index, then a binary search between the last one
// found and the first one missing.
Expected<std::int64_t> MongoStore::first_missing(
    std::int64_t from, const std::function<Expected<bool>(std::int64_t)>& exists) {
  auto there = exists(from);
  if (!there) return Unexpected{there.error()};
  if (!*there) return from;
  std::int64_t found = from;
  std::int64_t missing = 0;
  for (std::int64_t step = 1;; step *= 2) {
    there = exists(from + step);
    if (!there) return Unexpected{there.error()};
    if (!*there) {
      missing = from + step;
      break;
    }
    found = from + step;
  }
  while (missing - found > 1) {
    const std::int64_t middle = found + (missing - found) / 2;
    there = exists(middle);
    if (!there) return Unexpected{there.error()};
    (*there ? found : missing) = middle;
  }
  return missing;
}

// The first block of `day` not taken yet at or after `from`: found by lookups of _id
// (FerretDB answers a sorted query on another field by reading every block of every day).
Expected<std::int64_t> MongoStore::take_id_block(const std::string& day, std::int64_t from) {
  const auto taken = [&](std::int64_t block) -> Expected<bool> {
    bool found = false;
    auto scanned = db_->find("id_blocks", {{"_id", day + ":" + std::to_string(block)}},
                             {{"limit", 1}}, [&](json&) { found = true; });
    if (!scanned) return Unexpected{scanned.error()};
    return found;
  };
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto block = first_missing(from, taken);
    if (!block) return Unexpected{block.error()};
    auto inserted =
        db_->write("insert", "id_blocks",
                   {{"documents", json::array({{{"_id", day + ":" + std::to_string(*block)},
                                                {"day", day},
                                                {"block", *block},
                                                {"owner", worker_},
                                                {"at", to_unix_ms(now_utc())}}})}});
    if (!inserted) return Unexpected{inserted.error()};
    if (!inserted->duplicate_key) return *block;
    from = *block + 1;  // another gateway took it first: the next one
  }
  return fail("store: no free block of process ids after 100 tries");
}

// Taking a block costs two round trips, during which no submission of this store could
// have an id: so the submission that passes the middle of a block takes the next one (the
// spare) after its own id, while the others go on. A spare of another day is dropped (a
// gap, as a stopped gateway leaves).
Expected<std::string> MongoStore::next_process_id(TimePoint now, std::int64_t& seq) {
  const std::string day = format_process_id(now, 0).substr(5, 8);
  std::unique_lock lock(ids_mutex_);
  if (day != ids_day_) {
    ids_spare_.reset();
    ids_last_block_ = -1;
    ids_next_ = ids_end_ = 0;
  }
  if (ids_next_ >= ids_end_) {
    std::int64_t block = 0;
    if (ids_spare_) {
      block = *ids_spare_;
      ids_spare_.reset();
    } else {
      auto taken = take_id_block(day, ids_last_block_ + 1);
      if (!taken) return Unexpected{taken.error()};
      block = *taken;
    }
    ids_day_ = day;
    ids_last_block_ = std::max(ids_last_block_, block);
    ids_next_ = block * kIdBlock + 1;
    ids_end_ = ids_next_ + kIdBlock;
  }
  const std::int64_t n = ids_next_++;
  seq = std::stoll(day) * 10'000'000'000LL + n;
  if (!ids_spare_ && !ids_taking_spare_ && ids_end_ - ids_next_ <= kIdBlock / 2) {
    ids_taking_spare_ = true;
    const std::int64_t from = ids_last_block_ + 1;
    lock.unlock();
    auto spare = take_id_block(day, from);
    lock.lock();
    ids_taking_spare_ = false;
    if (!spare) {
      spdlog::warn("process ids: no spare block taken ({}); the next is taken when needed",
                   spare.error());
    } else if (day == ids_day_) {
      ids_spare_ = *spare;
      ids_last_block_ = std::max(ids_last_block_, *spare);
    }
  }
  return format_process_id(now, static_cast<std::uint64_t>(n));
}

// An id that its request did not use (a replay), back to the block when nothing was taken
// after it, so that replays leave no gaps.
void MongoStore::unused_process_id(std::int64_t seq) {
  std::lock_guard lock(ids_mutex_);
  if (seq % 10'000'000'000LL == ids_next_ - 1 &&
      std::to_string(seq / 10'000'000'000LL) == ids_day_) {
    --ids_next_;
  }
}

}  // namespace stargate::server
