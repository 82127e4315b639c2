// Fuzz target: the small parsers of values from outside (durations, timestamps, ids, state
// and error names, percent-encoding) and the escaping of outside bytes. Parsed values must
// format and parse back to themselves; escaped text must be printable and valid UTF-8.
#include <cstdint>
#include <string>

#include "shared/clock.hpp"
#include "shared/duration.hpp"
#include "shared/errors.hpp"
#include "shared/ids.hpp"
#include "shared/process_state.hpp"
#include "shared/text.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace stargate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto duration = parse_duration(text)) {
    const auto again = parse_duration(format_duration(*duration));
    fuzz::check(again && *again == *duration, "duration does not round-trip", text);
  }
  if (auto time = parse_timestamp(text)) {
    // Formatting keeps whole seconds.
    const auto again = parse_timestamp(format_timestamp(*time));
    fuzz::check(again && *again == std::chrono::floor<std::chrono::seconds>(*time),
                "timestamp round trip", text);
  }
  if (is_process_id(text)) fuzz::check(is_safe_id(text), "a process id that is not a safe id");
  (void)is_uuid(text);
  if (auto status = parse_process_status(text)) {
    fuzz::check(to_string(*status) == text, "status name round trip");
  }
  if (auto state = parse_local_state(text)) fuzz::check(to_string(*state) == text, "state name");
  if (auto code = parse_error_code(text)) fuzz::check(error_name(*code) == text, "error name");
  const std::string escaped = escape_text(text, 256);
  fuzz::check_message(escaped);
  fuzz::check(is_valid_utf8(to_valid_utf8(text)), "to_valid_utf8 left invalid bytes");
  fuzz::check(is_valid_utf8(shorten_message(std::string(text), 64)), "shortened message");
  fuzz::check(shorten_message(std::string(text), 64).size() <= 64, "shortened message length");
  (void)percent_decode(text);
  return 0;
}
