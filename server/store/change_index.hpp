// The change feed of a store whose record lives elsewhere (MongoDB): for each tenant, the
// ids of its processes in the order their changes were committed, and a wakeup for every
// reader when one is added. A writer adds an entry after the change is in the record, so a
// reader that finds an entry reads the process as it is since then, or newer. The index may
// lose entries (Redis restarted empty, a writer that could not reach it): it then refuses
// the cursors given out before, and the readers start again from per-process reads, rather
// than go on past a change they never saw.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "shared/expected.hpp"

namespace stargate::server {

class ChangeIndex {
 public:
  struct Entry {
    std::string cursor;  // the position just after this entry
    std::string process_id;
  };
  struct Read {
    bool cursor_known = true;    // false: not given out here, or entries after it are lost
    std::vector<Entry> entries;  // oldest first
  };

  virtual ~ChangeIndex() = default;
  // Processes of `tenant` changed (their changes are in the record): one entry each, in
  // this order, added at once.
  virtual Status record(const std::string& tenant, const std::vector<std::string>& process_ids) = 0;
  // Makes the readers of each tenant whose entry could not be added resynchronise, once the
  // index answers again. Writers call it often (record() does it first).
  virtual void repair() = 0;
  // The position after the tenant's newest entry: where a reader starting now begins.
  virtual Expected<std::string> head(const std::string& tenant) = 0;
  // Up to `count` entries after `cursor`.
  virtual Expected<Read> after(const std::string& tenant, const std::string& cursor,
                               std::size_t count) = 0;
  // Calls `listener` from a thread of its own with the tenant of each entry anyone adds,
  // until called again (an empty function stops it). An empty tenant: entries may have gone
  // unheard (the index was unreachable), so every reader should look again.
  virtual void listen(std::function<void(const std::string& tenant)> listener) = 0;
};

}  // namespace stargate::server
