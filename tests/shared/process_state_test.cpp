// Tests of shared/process_state.cpp: names and the allowed transitions.
#include "shared/process_state.hpp"

#include <gtest/gtest.h>

namespace stargate {
namespace {

using S = ProcessStatus;
using L = LocalState;

TEST(ProcessState, NamesRoundTrip) {
  for (auto s : {S::kAccepted, S::kProcessing, S::kCompleted, S::kFailed}) {
    EXPECT_EQ(parse_process_status(to_string(s)), s);
  }
  for (auto l : {L::kQueued, L::kAccepted, L::kProcessing, L::kCompleted, L::kFailed, L::kRejected,
                 L::kCancelled}) {
    EXPECT_EQ(parse_local_state(to_string(l)), l);
  }
  EXPECT_FALSE(parse_process_status("Completed"));
  EXPECT_FALSE(parse_process_status(""));
  EXPECT_FALSE(parse_local_state("queued "));
}

TEST(ProcessState, GatewayMovesOnlyForward) {
  EXPECT_TRUE(check_transition(S::kAccepted, S::kProcessing));
  EXPECT_TRUE(check_transition(S::kAccepted, S::kCompleted));
  EXPECT_TRUE(check_transition(S::kProcessing, S::kProcessing));  // progress
  EXPECT_TRUE(check_transition(S::kProcessing, S::kFailed));
  EXPECT_FALSE(check_transition(S::kProcessing, S::kAccepted));
  EXPECT_FALSE(check_transition(S::kCompleted, S::kProcessing));
  EXPECT_FALSE(check_transition(S::kCompleted, S::kFailed));
  EXPECT_FALSE(check_transition(S::kFailed, S::kCompleted));
  const auto refused = check_transition(S::kCompleted, S::kAccepted);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "illegal state transition: completed -> accepted");
}

TEST(ProcessState, OnlyARetryableFailureStartsAgain) {
  EXPECT_TRUE(check_transition(S::kFailed, S::kAccepted, true));
  const auto refused = check_transition(S::kFailed, S::kAccepted, false);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("not retryable"), std::string::npos);
  EXPECT_TRUE(check_transition(L::kFailed, L::kAccepted, true));
  EXPECT_FALSE(check_transition(L::kFailed, L::kAccepted, false));
}

TEST(ProcessState, LocalTransitions) {
  EXPECT_TRUE(check_transition(L::kQueued, L::kQueued));  // another attempt
  EXPECT_TRUE(check_transition(L::kQueued, L::kAccepted));
  EXPECT_TRUE(check_transition(L::kQueued, L::kRejected));
  EXPECT_TRUE(check_transition(L::kQueued, L::kCancelled));
  EXPECT_FALSE(check_transition(L::kQueued, L::kCompleted));
  EXPECT_TRUE(check_transition(L::kAccepted, L::kCompleted));
  EXPECT_FALSE(check_transition(L::kAccepted, L::kCancelled));
  EXPECT_FALSE(check_transition(L::kAccepted, L::kQueued));
  for (auto end : {L::kCompleted, L::kRejected, L::kCancelled}) {
    for (auto to : {L::kQueued, L::kAccepted, L::kProcessing, L::kCompleted, L::kFailed}) {
      EXPECT_FALSE(check_transition(end, to)) << to_string(end) << " -> " << to_string(to);
    }
  }
}

TEST(ProcessState, Terminal) {
  EXPECT_TRUE(is_terminal(S::kCompleted));
  EXPECT_TRUE(is_terminal(S::kFailed));
  EXPECT_FALSE(is_terminal(S::kProcessing));
  EXPECT_TRUE(is_terminal(L::kRejected));
  EXPECT_TRUE(is_terminal(L::kCancelled));
  EXPECT_FALSE(is_terminal(L::kQueued));
  EXPECT_EQ(to_local_state(S::kProcessing), L::kProcessing);
}

}  // namespace
}  // namespace stargate
