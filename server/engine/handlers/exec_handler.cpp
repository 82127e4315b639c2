// Running a handler program (shared/subprocess.cpp does the process work).
#include "server/engine/handlers/exec_handler.hpp"

#include <algorithm>

#include "shared/json.hpp"
#include "shared/subprocess.hpp"
#include "shared/text.hpp"

namespace stargate::server {
namespace {

constexpr int kExitTempFail = 75;  // sysexits.h EX_TEMPFAIL

HandlerOutcome failed(const char* code, const std::string& message, nlohmann::json details,
                      bool retryable) {
  return HandlerOutcome::failure({code, shorten_message(message), std::move(details)}, retryable);
}

}  // namespace

HandlerOutcome ExecHandler::run(const HandlerInput& input, HandlerContext& context) {
  if (settings_.command.empty()) return failed("EXEC_FAILED", "no command configured", {}, false);
  const std::string& program = settings_.command.front();
  SubprocessOptions options;
  options.argv = settings_.command;
  options.environment = {"STARGATE_PROCESS_ID=" + input.process_id,
                         "STARGATE_PROCESS_TYPE=" + input.process_type,
                         "STARGATE_TENANT=" + input.tenant};
  options.input = dump_json({{"processId", input.process_id},
                             {"processType", input.process_type},
                             {"tenant", input.tenant},
                             {"data", input.data}}) +
                  "\n";
  options.timeout = settings_.timeout;
  options.kill_grace = settings_.kill_grace;
  options.max_output_bytes = settings_.max_output_bytes;
  options.keep_going = [&] { return context.pause(Duration::zero()); };
  options.on_line = [&](std::string_view line) {
    if (auto progress = parse_progress_line(line, settings_.max_output_bytes)) {
      context.progress(progress->percent, progress->step);
    }
  };

  const auto run = run_subprocess(options);
  using Kind = SubprocessResult::Kind;
  switch (run.kind) {
    case Kind::kSpawnFailed:
      return failed("EXEC_FAILED", run.error, {}, false);
    case Kind::kStopped:
      return HandlerOutcome::stopped();
    case Kind::kTimedOut:
      return failed("TIMEOUT",
                    program + " did not finish within " + format_duration(settings_.timeout), {},
                    true);
    case Kind::kTooMuchOutput:
      return failed(
          "OUTPUT_TOO_LARGE",
          program + " printed more than " + std::to_string(settings_.max_output_bytes) + " bytes",
          {}, false);
    case Kind::kSignaled:
      return failed("EXEC_FAILED",
                    program + " was killed by signal " + std::to_string(run.signal) +
                        (run.errors.empty() ? "" : ": " + run.errors),
                    {{"signal", run.signal}}, true);
    case Kind::kExited:
      break;
  }
  if (run.exit_code != 0) {
    return failed("EXEC_FAILED",
                  run.errors.empty()
                      ? program + " exited with status " + std::to_string(run.exit_code)
                      : run.errors,
                  {{"exitCode", run.exit_code}}, run.exit_code == kExitTempFail);
  }
  auto result = parse_result_line(run.last_line, settings_.max_output_bytes);
  if (!result) {
    return failed("OUTPUT_INVALID",
                  program + " did not print a JSON object as its last line" + result.error(), {},
                  false);
  }
  return HandlerOutcome::success(std::move(*result));
}

std::optional<ProgressLine> parse_progress_line(std::string_view line, std::size_t max_bytes) {
  auto parsed = parse_json(line, {max_bytes, 64});
  if (!parsed || !parsed->is_object()) return std::nullopt;
  const auto progress = parsed->find("progress");
  if (progress == parsed->end() || !progress->is_number()) return std::nullopt;
  ProgressLine out;
  // Clamped before the conversion: a double beyond int's range does not convert.
  out.percent = static_cast<int>(std::clamp(progress->get<double>(), 0.0, 100.0));
  if (const auto step = parsed->find("currentStep"); step != parsed->end() && step->is_string()) {
    out.step = to_valid_utf8(step->get_ref<const std::string&>(), kMaxStepBytes);
  }
  return out;
}

Expected<nlohmann::json> parse_result_line(std::string_view line, std::size_t max_bytes) {
  if (line.empty()) return fail("");
  auto result = parse_json(line, {max_bytes, 64});
  if (!result) return fail(": " + result.error().message);
  if (!result->is_object()) return fail("");
  return std::move(*result);
}

}  // namespace stargate::server
