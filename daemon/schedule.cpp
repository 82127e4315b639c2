// Polling schedule and backoff.
#include "daemon/schedule.hpp"

#include <algorithm>

namespace stargate::daemon {

PollPhase poll_phase(const PollingConfig& polling, Duration since_accepted) {
  return since_accepted < polling.fast_phase ? PollPhase::kFast : PollPhase::kSlow;
}

Duration poll_interval(const PollingConfig& polling, Duration since_accepted) {
  return poll_phase(polling, since_accepted) == PollPhase::kFast ? polling.fast_interval
                                                                 : polling.slow_interval;
}

Duration backoff(Duration initial, Duration max, int failures) {
  if (failures <= 0) return Duration::zero();
  Duration delay = initial;
  for (int i = 1; i < failures && delay < max; ++i)
    delay *= 2;
  return std::min(delay, max);
}

Duration backoff_with_jitter(Duration initial, Duration max, int failures, double fraction,
                             std::mt19937_64& random) {
  const Duration base = backoff(initial, max, failures);
  if (base == Duration::zero() || fraction <= 0) return base;
  std::uniform_real_distribution<double> spread(-fraction, fraction);
  const auto jittered =
      static_cast<Duration::rep>(static_cast<double>(base.count()) * (1.0 + spread(random)));
  return std::clamp(Duration(jittered), Duration::zero(), max);
}

}  // namespace stargate::daemon
