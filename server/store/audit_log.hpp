// Batches request audit events and appends them from a background thread, so that
// answering a request never waits for the audit's disk write. State changes are audited by
// the store itself, in the transaction that makes them.
//
// When requests come faster than the store takes their records (a flood against a slower
// MongoDB), the queue would grow until records were lost: instead, past kBehind records
// waiting while the store is taking them, record() waits (up to kMostWait) for the writer to
// catch up, so that a flood is slowed to what the audit keeps, not recorded in part. While
// the store fails, nothing waits: records queue up to kMaxPending (about 1.3 kB of memory
// each), then are counted lost.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "server/store/store.hpp"

namespace stargate::server {

class AuditLog {
 public:
  // `max_pending`: how many records wait for a failing store at most (tests make it small).
  explicit AuditLog(AuditStore& store, std::size_t max_pending = kMaxPending);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;

  static constexpr std::size_t kMaxBatch = 512;
  static constexpr std::size_t kBehind = 16 * kMaxBatch;
  static constexpr auto kMostWait = std::chrono::seconds(1);
  // A minute and a half of a flood of 1,000 requests a second against a failed MongoDB, in
  // about 130 MB: a million (1.3 GB) would take a small gateway host's memory first.
  static constexpr std::size_t kMaxPending = 100'000;

  // Queues an event. Waits only while the writer is behind a store that takes records
  // (above). When the store has been failing and max_pending events wait (a batch the
  // writer is trying again comes on top), new ones are counted as lost rather than
  // exhausting memory.
  void record(AuditEvent event);
  // Writes everything queued so far, then returns.
  void flush();
  // Flushes and stops the thread.
  void stop();

  std::uint64_t lost() const;
  std::size_t pending() const;

 private:
  void loop();

  AuditStore& store_;
  const std::size_t max_pending_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::condition_variable caught_up_;  // below kBehind again, or the store failing
  std::deque<AuditEvent> pending_;
  bool store_taking_ = true;   // the last append went in
  std::uint64_t queued_ = 0;   // events ever queued
  std::uint64_t written_ = 0;  // events ever written (or given up on)
  std::uint64_t lost_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace stargate::server
