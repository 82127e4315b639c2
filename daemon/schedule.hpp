// The timing rules of seed 000 §3 and §12 as plain functions: when to poll a process next,
// and how long to back off after failures. No clocks or timers here, so tests are instant.
#pragma once

#include <random>

#include "daemon/config.hpp"
#include "shared/duration.hpp"

namespace stargate::daemon {

enum class PollPhase { kFast, kSlow };

// Fast while the process is younger than fast_phase (counted from the 202), slow after.
PollPhase poll_phase(const PollingConfig& polling, Duration since_accepted);
Duration poll_interval(const PollingConfig& polling, Duration since_accepted);

// initial * 2^(failures-1), capped at `max`: 5, 10, 20, 40, 80 s with the defaults.
// `failures` counts from 1; 0 gives zero.
Duration backoff(Duration initial, Duration max, int failures);

// The same with up to ±`fraction` random jitter (never below zero, never above max), so that
// many daemons recovering from one outage do not return in step.
Duration backoff_with_jitter(Duration initial, Duration max, int failures, double fraction,
                             std::mt19937_64& random);

}  // namespace stargate::daemon
