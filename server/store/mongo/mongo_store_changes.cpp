// The change feed of the scale-out backend: the change index (Redis) orders the ids, MongoDB
// holds the processes. Every writer, gateway or worker, adds the id after its write to
// MongoDB is acknowledged, so a reader that finds the id reads that change or a newer one.
#include <spdlog/spdlog.h>

#include <unordered_map>

#include "server/store/mongo/mongo_store.hpp"

namespace stargate::server {

using nlohmann::json;

namespace {

// A page reads up to this many entries per process it may hold: the same process changes
// several times, and each counts once.
constexpr std::size_t kEntriesPerProcess = 4;
constexpr std::size_t kMaxEntries = 2000;

}  // namespace

void MongoStore::changed(const std::string& tenant, const std::string& process_id) {
  changed(tenant, std::vector<std::string>{process_id});
}

void MongoStore::changed(const std::string& tenant, const std::vector<std::string>& process_ids) {
  if (!changes_ || process_ids.empty()) return;
  if (auto recorded = changes_->record(tenant, process_ids); !recorded) {
    spdlog::warn(
        "process {}{}: change not put on the change feed ({}); tenant {}'s readers "
        "resynchronise once Redis answers",
        process_ids.front(),
        process_ids.size() > 1 ? fmt::format(" and {} more", process_ids.size() - 1) : "",
        recorded.error(), tenant);
  }
}

void MongoStore::hold(const ProcessRecord& record) {
  std::lock_guard lock(held_mutex_);
  held_[record.view.process_id] = {record.tenant, record.view.progress, record.view.current_step};
}

void MongoStore::release(const std::string& process_id) {
  std::lock_guard lock(held_mutex_);
  held_.erase(process_id);
}

// Each process once, at its last entry among those read: a process that changed three
// times since the cursor is one change, as it is now, placed by its last change.
Expected<ChangePage> MongoStore::changes_after(const ChangeQuery& query) {
  if (!changes_) return fail("store: this backend keeps no change feed without Redis");
  if (auto ok = ready(); !ok) return Unexpected{ok.error()};
  ChangePage page;
  if (query.cursor.empty()) {
    auto head = changes_->head(query.tenant);
    if (!head) return Unexpected{head.error()};
    page.cursor = std::move(*head);
    return page;
  }
  const std::size_t wanted = std::min(query.limit * kEntriesPerProcess, kMaxEntries);
  auto read = changes_->after(query.tenant, query.cursor, wanted);
  if (!read) return Unexpected{read.error()};
  page.cursor = query.cursor;
  if (!read->cursor_known) {
    page.cursor_known = false;
    return page;
  }
  const auto& entries = read->entries;
  std::unordered_map<std::string, std::size_t> last;
  for (std::size_t i = 0; i < entries.size(); ++i)
    last[entries[i].process_id] = i;
  std::vector<std::string> ids;
  std::size_t consumed = 0;
  for (; consumed < entries.size(); ++consumed) {
    const auto& entry = entries[consumed];
    if (last[entry.process_id] == consumed) {
      if (ids.size() == query.limit) break;
      ids.push_back(entry.process_id);
    }
    page.cursor = entry.cursor;
  }
  page.more = consumed < entries.size() || entries.size() == wanted;
  if (ids.empty()) return page;

  // Each by its _id (a completed one from memory): FerretDB answers an $in of ids by
  // reading the whole collection, and a lookup of one _id from its index.
  for (const auto& id : ids) {
    auto record = load(id);
    if (!record) return Unexpected{record.error()};
    if (*record && (*record)->tenant == query.tenant) {
      page.processes.push_back(std::move(**record));
    }
  }
  return page;
}

void MongoStore::on_change(std::function<void(const std::string& tenant)> listener) {
  if (changes_) changes_->listen(std::move(listener));
}

}  // namespace stargate::server
