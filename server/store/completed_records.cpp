#include "server/store/completed_records.hpp"

namespace stargate::server {

CompletedRecords::CompletedRecords(std::size_t capacity) : capacity_(capacity) {}

std::optional<ProcessRecord> CompletedRecords::get(const std::string& process_id) const {
  std::shared_ptr<const ProcessRecord> found;
  {
    std::lock_guard lock(mutex_);
    auto it = records_.find(process_id);
    if (it == records_.end()) return std::nullopt;
    found = it->second;
  }
  return *found;  // copied outside the lock
}

void CompletedRecords::put(const ProcessRecord& record) {
  if (capacity_ == 0 || record.view.status != ProcessStatus::kCompleted) return;
  auto kept = std::make_shared<const ProcessRecord>(record);
  std::lock_guard lock(mutex_);
  auto [it, inserted] = records_.try_emplace(record.view.process_id, std::move(kept));
  if (!inserted) return;
  order_.push_back(record.view.process_id);
  while (order_.size() > capacity_) {
    records_.erase(order_.front());
    order_.pop_front();
  }
}

std::size_t CompletedRecords::size() const {
  std::lock_guard lock(mutex_);
  return records_.size();
}

}  // namespace stargate::server
