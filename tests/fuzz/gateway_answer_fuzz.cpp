// Fuzz target: the daemon's decoding of what the gateway and its token endpoint answer (a
// hostile or broken gateway included): 202 bodies, status bodies, change-feed answers,
// error bodies and token answers. What decodes must encode again and decode to the same.
#include <cstdint>
#include <string>

#include "shared/codec.hpp"
#include "shared/errors.hpp"
#include "shared/json.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace stargate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto body = parse_json(text, {4 << 20, 64});
  if (!body) {
    fuzz::check_message(body.error().message);
    return 0;
  }
  if (auto accepted = parse_accepted(*body)) {
    (void)dump_json(to_json(*accepted));
  }
  if (auto view = parse_process_view(*body)) {
    fuzz::check(view->progress >= 0 && view->progress <= 100, "progress out of range");
    const auto again = parse_json(dump_json(to_json(*view)));
    fuzz::check(bool(again), "an encoded status does not parse");
    fuzz::check(bool(parse_process_view(*again)), "an encoded status does not decode");
  }
  if (auto page = parse_changes_answer(*body)) {
    fuzz::check(!page->cursor.empty() && page->cursor.size() <= 128, "cursor length");
    fuzz::check(page->changes.size() + page->unreadable == (*body)["changes"].size(),
                "a change entry neither read nor counted");
    fuzz::check(!page->retry_after_seconds ||
                    (*page->retry_after_seconds >= 0 && *page->retry_after_seconds <= 3600),
                "retryAfter range");
  }
  if (auto error = parse_error_body(*body)) {
    (void)dump_json(error_body(*error, "2026-12-01T00:00:00Z", "id"));
  }
  if (auto token = parse_token_answer(*body)) {
    for (const char c : token->access_token)
      fuzz::check(c > 0x20 && c < 0x7F, "token bytes");
    fuzz::check(token->expires_in >= 1 && token->expires_in <= 86400 * 30, "expires_in range");
  }
  return 0;
}
