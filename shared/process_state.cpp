// The process model's names and its transition table.
#include "shared/process_state.hpp"

#include <array>
#include <string>

namespace stargate {
namespace {

constexpr std::array<std::string_view, 4> kStatusNames = {"accepted", "processing", "completed",
                                                          "failed"};
constexpr std::array<std::string_view, 7> kLocalNames = {
    "queued", "accepted", "processing", "completed", "failed", "rejected", "cancelled"};

template <typename Enum, std::size_t N>
std::optional<Enum> parse_name(const std::array<std::string_view, N>& names,
                               std::string_view text) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == text) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

Status refuse(std::string_view from, std::string_view to) {
  return fail("illegal state transition: " + std::string(from) + " -> " + std::string(to));
}

}  // namespace

std::string_view to_string(ProcessStatus status) {
  return kStatusNames.at(static_cast<std::size_t>(status));
}

std::string_view to_string(LocalState state) {
  return kLocalNames.at(static_cast<std::size_t>(state));
}

std::optional<ProcessStatus> parse_process_status(std::string_view text) {
  return parse_name<ProcessStatus>(kStatusNames, text);
}

std::optional<LocalState> parse_local_state(std::string_view text) {
  return parse_name<LocalState>(kLocalNames, text);
}

bool is_terminal(ProcessStatus status) {
  return status == ProcessStatus::kCompleted || status == ProcessStatus::kFailed;
}

bool is_terminal(LocalState state) {
  switch (state) {
    case LocalState::kCompleted:
    case LocalState::kFailed:
    case LocalState::kRejected:
    case LocalState::kCancelled:
      return true;
    default:
      return false;
  }
}

LocalState to_local_state(ProcessStatus status) {
  switch (status) {
    case ProcessStatus::kAccepted:
      return LocalState::kAccepted;
    case ProcessStatus::kProcessing:
      return LocalState::kProcessing;
    case ProcessStatus::kCompleted:
      return LocalState::kCompleted;
    case ProcessStatus::kFailed:
      return LocalState::kFailed;
  }
  return LocalState::kFailed;  // unreachable: every enumerator is handled above
}

Status check_transition(ProcessStatus from, ProcessStatus to, bool retryable) {
  using S = ProcessStatus;
  if (from == S::kFailed && to == S::kAccepted) {
    if (retryable) return {};
    return fail("illegal state transition: failed -> accepted (the failure is not retryable)");
  }
  // Forward only: accepted and processing may move to processing (progress), completed or
  // failed; a terminal state never changes.
  const bool ok = !is_terminal(from) && to != S::kAccepted;
  return ok ? Status{} : refuse(to_string(from), to_string(to));
}

Status check_transition(LocalState from, LocalState to, bool retryable) {
  using L = LocalState;
  bool ok = false;
  switch (from) {
    case L::kQueued:
      // Still ours: another attempt (queued), the gateway's 202 (accepted), its final refusal
      // (rejected) or the operator's cancel.
      ok = to == L::kQueued || to == L::kAccepted || to == L::kRejected || to == L::kCancelled;
      break;
    case L::kAccepted:
    case L::kProcessing:
      // The gateway may report any later state (a fast process jumps to completed).
      ok = to == L::kProcessing || to == L::kCompleted || to == L::kFailed || to == from;
      break;
    case L::kFailed:
      if (to == L::kAccepted) {
        if (retryable) return {};
        return fail("illegal state transition: failed -> accepted (the failure is not retryable)");
      }
      break;
    case L::kCompleted:
    case L::kRejected:
    case L::kCancelled:
      break;
  }
  return ok ? Status{} : refuse(to_string(from), to_string(to));
}

}  // namespace stargate
