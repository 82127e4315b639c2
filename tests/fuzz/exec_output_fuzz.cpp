// Fuzz target: what an exec handler prints, read line by line as the engine does:
// progress lines, and the result on the last line.
#include <cstdint>
#include <string>

#include "server/engine/handlers/exec_handler.hpp"
#include "shared/json.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace stargate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view output(reinterpret_cast<const char*>(data), size);
  std::string_view last;
  while (!output.empty()) {
    const auto newline = output.find('\n');
    const auto line = output.substr(0, newline);
    output = newline == std::string_view::npos ? std::string_view() : output.substr(newline + 1);
    if (auto progress = server::parse_progress_line(line, 1 << 20)) {
      fuzz::check(progress->percent >= 0 && progress->percent <= 100, "percent out of range");
      fuzz::check(progress->step.size() <= server::kMaxStepBytes, "step too long");
      fuzz::check(is_valid_utf8(progress->step), "step is not valid UTF-8");
    }
    if (!line.empty()) last = line;
  }
  auto result = server::parse_result_line(last, 1 << 20);
  if (result) {
    fuzz::check(result->is_object(), "a result that is not an object");
    (void)dump_json(*result);
  } else {
    fuzz::check(is_valid_utf8(result.error()), "error is not valid UTF-8", result.error());
  }
  return 0;
}
