// The records of completed processes that this program read last, kept in its memory in
// front of the shared answer cache: a completed process never changes again, so a copy is
// right for ever, and a status poll of one costs no round trip at all. Bounded: past the
// capacity, the entry kept longest leaves for the new one.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "server/store/store.hpp"

namespace stargate::server {

class CompletedRecords {
 public:
  explicit CompletedRecords(std::size_t capacity);

  std::optional<ProcessRecord> get(const std::string& process_id) const;
  // Records that are not completed are not kept.
  void put(const ProcessRecord& record);
  std::size_t size() const;

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const ProcessRecord>> records_;
  std::deque<std::string> order_;  // oldest first
};

}  // namespace stargate::server
