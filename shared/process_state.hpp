// The process model: the states a process passes through on the gateway and in the daemon's
// local queue, and the transitions allowed between them (a process only moves forward).
#pragma once

#include <optional>
#include <string_view>

#include "shared/expected.hpp"

namespace stargate {

// A process as the gateway sees it (seed 000 §3, the `status` field of §11).
enum class ProcessStatus { kAccepted, kProcessing, kCompleted, kFailed };

// A request as the daemon sees it: `queued` before the gateway accepted it, `rejected` when
// the gateway refused it for good, `cancelled` when an operator withdrew it while queued.
enum class LocalState {
  kQueued,
  kAccepted,
  kProcessing,
  kCompleted,
  kFailed,
  kRejected,
  kCancelled
};

std::string_view to_string(ProcessStatus status);
std::string_view to_string(LocalState state);

// Parse the lowercase wire names; std::nullopt for anything else.
std::optional<ProcessStatus> parse_process_status(std::string_view text);
std::optional<LocalState> parse_local_state(std::string_view text);

bool is_terminal(ProcessStatus status);
bool is_terminal(LocalState state);

// The local state that mirrors a gateway status.
LocalState to_local_state(ProcessStatus status);

// Whether `from` may move to `to`. Progress updates (processing -> processing) are allowed;
// a failed process may go back to accepted only when its failure was retryable (a new attempt
// of the same process). The error names both states.
Status check_transition(ProcessStatus from, ProcessStatus to, bool retryable = false);
Status check_transition(LocalState from, LocalState to, bool retryable = false);

}  // namespace stargate
