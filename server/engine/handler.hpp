// What a process type's handler is: code that turns a request's data into a result (or an
// error), reporting progress as it goes. The engine runs handlers on its worker threads.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/codec.hpp"
#include "shared/duration.hpp"

namespace stargate::server {

// What a handler may ask of the engine while it runs.
class HandlerContext {
 public:
  virtual ~HandlerContext() = default;
  // Records progress (0..100) and the step now running; visible to GET at once.
  virtual void progress(int percent, const std::string& step) = 0;
  // Waits up to `duration`; returns false early when the server is stopping, in which case
  // the handler should return promptly (its process is run again after a restart).
  virtual bool pause(Duration duration) = 0;
};

struct HandlerOutcome {
  bool ok = true;
  nlohmann::json result;  // when ok
  ProcessError error;     // when not
  bool retryable = false;
  bool interrupted = false;  // the server is stopping; leave the process to be run again

  static HandlerOutcome success(nlohmann::json result) {
    HandlerOutcome outcome;
    outcome.result = std::move(result);
    return outcome;
  }
  static HandlerOutcome failure(ProcessError error, bool retryable) {
    HandlerOutcome outcome;
    outcome.ok = false;
    outcome.error = std::move(error);
    outcome.retryable = retryable;
    return outcome;
  }
  static HandlerOutcome stopped() {
    HandlerOutcome outcome;
    outcome.ok = false;
    outcome.interrupted = true;
    return outcome;
  }
};

// The request a handler works on.
struct HandlerInput {
  std::string process_id;
  std::string tenant;
  std::string process_type;
  nlohmann::json data;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Must be safe to run again from the start on the same input (after a crash) and give the
  // same result.
  virtual HandlerOutcome run(const HandlerInput& input, HandlerContext& context) = 0;
};

}  // namespace stargate::server
