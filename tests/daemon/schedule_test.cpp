// Tests of daemon/schedule.cpp: the timings of seed 000 §3 and §12.
#include "daemon/schedule.hpp"

#include <gtest/gtest.h>

namespace stargate::daemon {
namespace {

using namespace std::chrono_literals;

TEST(Schedule, FastForTwoMinutesThenSlow) {
  const PollingConfig polling;
  EXPECT_EQ(poll_interval(polling, 0s), 30s);
  EXPECT_EQ(poll_interval(polling, 119s), 30s);
  EXPECT_EQ(poll_phase(polling, 119s), PollPhase::kFast);
  EXPECT_EQ(poll_interval(polling, 120s), 60s);
  EXPECT_EQ(poll_phase(polling, 2h), PollPhase::kSlow);
}

TEST(Schedule, BackoffDoublesFromFiveSeconds) {
  const PollingConfig polling;
  std::vector<Duration> delays;
  for (int failure = 1; failure <= 7; ++failure) {
    delays.push_back(backoff(polling.backoff_initial, polling.backoff_max, failure));
  }
  EXPECT_EQ(delays, (std::vector<Duration>{5s, 10s, 20s, 40s, 80s, 80s, 80s}));
  EXPECT_EQ(backoff(5s, 60s, 5), 60s);  // the sending cap
  EXPECT_EQ(backoff(5s, 60s, 0), 0s);
  EXPECT_EQ(backoff(5s, 60s, 1000000), 60s);  // no overflow
}

TEST(Schedule, JitterStaysWithinBoundsAndVaries) {
  std::mt19937_64 random(42);
  std::set<Duration::rep> seen;
  for (int i = 0; i < 200; ++i) {
    const auto delay = backoff_with_jitter(5s, 60s, 3, 0.2, random);
    EXPECT_GE(delay, 16s);
    EXPECT_LE(delay, 24s);
    seen.insert(delay.count());
  }
  EXPECT_GT(seen.size(), 50u);
  for (int i = 0; i < 100; ++i)
    EXPECT_LE(backoff_with_jitter(5s, 60s, 10, 0.2, random), 60s);
}

}  // namespace
}  // namespace stargate::daemon
