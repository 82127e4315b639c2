// A process type served by an external program (INTERFACES.md): it gets the request as JSON
// on stdin, may print progress lines {"progress": 45, "currentStep": "..."} on stdout, and
// prints its result JSON as its last line. A non-zero exit fails the process with the
// program's stderr as the message; exit status 75 (EX_TEMPFAIL) marks the failure
// retryable. A program that outlives its time limit is stopped (SIGTERM, then SIGKILL) and
// the process fails, retryable.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/engine/handler.hpp"
#include "shared/expected.hpp"

namespace stargate::server {

struct ExecSettings {
  std::vector<std::string> command;  // argv; no shell is involved
  Duration timeout = std::chrono::minutes(5);
  Duration kill_grace = std::chrono::seconds(5);  // between SIGTERM and SIGKILL
  std::size_t max_output_bytes = 1 << 20;         // stdout beyond this fails the process
};

// A line of a handler's output that reports progress: {"progress": 45, "currentStep": "..."}
// (percent clamped to 0-100, the step cut to kMaxStepBytes); std::nullopt for other lines.
struct ProgressLine {
  int percent = 0;
  std::string step;
};
inline constexpr std::size_t kMaxStepBytes = 200;
std::optional<ProgressLine> parse_progress_line(std::string_view line, std::size_t max_bytes);

// The result a handler printed as its last line: a JSON object. The error is a suffix for
// "did not print a JSON object as its last line" (empty, or ": " and why).
Expected<nlohmann::json> parse_result_line(std::string_view line, std::size_t max_bytes);

class ExecHandler final : public Handler {
 public:
  explicit ExecHandler(ExecSettings settings) : settings_(std::move(settings)) {}
  HandlerOutcome run(const HandlerInput& input, HandlerContext& context) override;

 private:
  ExecSettings settings_;
};

}  // namespace stargate::server
