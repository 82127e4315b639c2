// The gateway's memory of completed processes: only completed ones are kept, each under its
// own id, and the number kept never passes the capacity (the oldest leaves first).
#include "server/store/completed_records.hpp"

#include <gtest/gtest.h>

namespace stargate::server {
namespace {

ProcessRecord record(const std::string& id, ProcessStatus status) {
  ProcessRecord r;
  r.tenant = "acme";
  r.view.process_id = id;
  r.view.status = status;
  r.view.result = {{"id", id}};
  return r;
}

TEST(CompletedRecords, KeepsCompletedProcessesOnly) {
  CompletedRecords kept(8);
  kept.put(record("PROC-1", ProcessStatus::kCompleted));
  kept.put(record("PROC-2", ProcessStatus::kAccepted));
  kept.put(record("PROC-3", ProcessStatus::kProcessing));
  kept.put(record("PROC-4", ProcessStatus::kFailed));  // may be retried: it changes again
  EXPECT_EQ(kept.size(), 1u);
  auto found = kept.get("PROC-1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->view.result, (nlohmann::json{{"id", "PROC-1"}}));
  EXPECT_EQ(found->tenant, "acme");
  EXPECT_FALSE(kept.get("PROC-2"));
  EXPECT_FALSE(kept.get("PROC-4"));
  EXPECT_FALSE(kept.get(""));
}

TEST(CompletedRecords, TheOldestLeavesPastTheCapacity) {
  CompletedRecords kept(3);
  for (int i = 1; i <= 5; ++i) {
    kept.put(record("PROC-" + std::to_string(i), ProcessStatus::kCompleted));
  }
  kept.put(record("PROC-4", ProcessStatus::kCompleted));  // again: still one entry
  EXPECT_EQ(kept.size(), 3u);
  EXPECT_FALSE(kept.get("PROC-1"));
  EXPECT_FALSE(kept.get("PROC-2"));
  EXPECT_TRUE(kept.get("PROC-3"));
  EXPECT_TRUE(kept.get("PROC-5"));
}

TEST(CompletedRecords, AZeroCapacityKeepsNothing) {
  CompletedRecords kept(0);
  kept.put(record("PROC-1", ProcessStatus::kCompleted));
  EXPECT_EQ(kept.size(), 0u);
  EXPECT_FALSE(kept.get("PROC-1"));
}

}  // namespace
}  // namespace stargate::server
