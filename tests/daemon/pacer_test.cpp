// Tests of daemon/pacer.cpp: requests spaced at the refill rate once the bucket runs low.
#include "daemon/pacer.hpp"

#include <gtest/gtest.h>

namespace stargate::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = Pacer::Clock;

TEST(Pacer, SendsFreelyUntilItKnowsTheLimit) {
  Pacer pacer;
  const auto now = Clock::now();
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(pacer.reserve(now), Duration::zero());
}

TEST(Pacer, SendsFreelyWhileTheBucketHoldsPlenty) {
  Pacer pacer;
  const auto now = Clock::now();
  pacer.observe(600, 50, now);  // 10 per second, 50 left
  int sent = 0;
  while (pacer.reserve(now) == Duration::zero())
    ++sent;
  EXPECT_EQ(sent, 48);  // all but the reserve of 2
}

TEST(Pacer, SpacesRequestsAtTheRefillRateWhenLow) {
  Pacer pacer;
  const auto start = Clock::now();
  pacer.observe(60, 2, start);  // one a second, at the reserve already
  const Duration wait = pacer.reserve(start);
  EXPECT_GE(wait, 1s);
  EXPECT_LE(wait, 1s + 5ms);
  EXPECT_EQ(pacer.reserve(start + wait), Duration::zero());
  // The next one waits another refill period.
  const Duration next = pacer.reserve(start + wait);
  EXPECT_GE(next, 990ms);
  // An answer that says the bucket is full again lets requests go at once.
  pacer.observe(60, 60, start + 2s);
  EXPECT_EQ(pacer.reserve(start + 2s), Duration::zero());
}

TEST(Pacer, IgnoresAnswersWithoutUsableHeaders) {
  Pacer pacer;
  pacer.observe(0, 0, Clock::now());
  pacer.observe(60, -1, Clock::now());
  EXPECT_EQ(pacer.reserve(Clock::now()), Duration::zero());
}

TEST(Pacer, ReadsOnlyPlainIntegerHeaders) {
  EXPECT_EQ(parse_rate_headers("600", "12"), (std::pair<std::int64_t, std::int64_t>{600, 12}));
  for (const auto& [limit, remaining] :
       std::vector<std::pair<std::string, std::string>>{{"", "1"},
                                                        {"600", ""},
                                                        {"-1", "1"},
                                                        {"6e2", "1"},
                                                        {"600", "1.5"},
                                                        {"9999999999999", "1"},
                                                        {"600", " 1"}}) {
    EXPECT_FALSE(parse_rate_headers(limit, remaining)) << limit << "/" << remaining;
  }
}

}  // namespace
}  // namespace stargate::daemon
