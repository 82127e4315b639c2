// A process type served by an external program (INTERFACES.md): it gets the request as JSON
// on stdin, may print progress lines {"progress": 45, "currentStep": "..."} on stdout, and
// prints its result JSON as its last line. A non-zero exit fails the process with the
// program's stderr as the message; exit status 75 (EX_TEMPFAIL) marks the failure
// retryable. A program that outlives its time limit is stopped (SIGTERM, then SIGKILL) and
// the process fails, retryable.
#pragma once

#include <string>
#include <vector>

#include "server/handler.hpp"

namespace stargate::server {

struct ExecSettings {
  std::vector<std::string> command;  // argv; no shell is involved
  Duration timeout = std::chrono::minutes(5);
  Duration kill_grace = std::chrono::seconds(5);  // between SIGTERM and SIGKILL
  std::size_t max_output_bytes = 1 << 20;         // stdout beyond this fails the process
};

class ExecHandler final : public Handler {
 public:
  explicit ExecHandler(ExecSettings settings) : settings_(std::move(settings)) {}
  HandlerOutcome run(const HandlerInput& input, HandlerContext& context) override;

 private:
  ExecSettings settings_;
};

}  // namespace stargate::server
