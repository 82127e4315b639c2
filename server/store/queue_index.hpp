// The fast path of a work queue whose record lives elsewhere (MongoDB): entries that tell
// the workers which process to look at next, so that none of them searches the record for
// work, and a worker that dies leaves its entry to be taken over once its lease has run out.
// An entry says "look at this process", never "run it": the record decides, with a claim
// that one worker wins. Losing every entry delays work and loses nothing, because
// sweep_uncovered() puts back an entry for each queued process that none covers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "shared/duration.hpp"
#include "shared/expected.hpp"

namespace stargate::server {

class QueueIndex {
 public:
  struct Entry {
    std::string id;          // the index's own id of the entry
    std::string process_id;  // the process to look at
  };

  virtual ~QueueIndex() = default;
  // An entry for each process that became queued (none for one an entry covers already).
  virtual Status push(const std::vector<std::string>& process_ids) = 0;
  // An entry even when one covers it: its holder is known to be gone (a restarted worker's
  // predecessor), so that the process need not wait for the old entry's lease.
  virtual Status push_again(const std::string& process_id) = 0;
  // The next entry for this worker, waiting up to `wait` for one: first an entry another
  // worker has held longer than the lease without touching it, else a new one.
  virtual Expected<std::optional<Entry>> next(Duration wait) = 0;
  // This worker still works on the entry's process (counts as renewing its lease).
  virtual Status touch(const Entry& entry) = 0;
  // The process needs the entry no more (finished, or taken by another): acknowledged and
  // removed, so that finished work costs no memory.
  virtual Status done(const Entry& entry) = 0;
  // Pushes an entry for each of `process_ids` (queued in the record) that none covers;
  // returns those it pushed.
  virtual Expected<std::vector<std::string>> sweep_uncovered(
      const std::vector<std::string>& process_ids) = 0;
  // Whether this worker is the one to sweep now (one worker in each `every`, whichever
  // asks first).
  virtual Expected<bool> sweep_due(Duration every) = 0;
  // Forgets the workers that hold no entry and have not asked for work for `idle` (gone, or
  // restarted under a new name); returns how many.
  virtual Expected<std::size_t> forget_idle_workers(Duration idle) = 0;
};

}  // namespace stargate::server
