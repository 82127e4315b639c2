// Bytes from outside made safe to show: valid UTF-8 for JSON, escaped control characters
// for log lines and error messages (so that no client can forge a log line or break a
// JSON encoder with the bytes it sends).
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace stargate {

// The length (1-4) of the well-formed UTF-8 sequence that starts at text[at], or 0 when the
// bytes there are not one (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
std::size_t utf8_sequence_length(std::string_view text, std::size_t at);

bool is_valid_utf8(std::string_view text);

// `text` with every byte that does not belong to a well-formed sequence replaced by U+FFFD,
// cut to at most `max_bytes` at a character boundary.
std::string to_valid_utf8(std::string_view text,
                          std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

// `text` for a log line or an error message: control characters become \n, \r, \t or \xHH,
// a backslash stays one, bytes of invalid UTF-8 become \xHH; cut (with "...") after
// `max_bytes` of input.
std::string escape_text(std::string_view text,
                        std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

// Decodes %XX escapes and '+' as a space (application/x-www-form-urlencoded);
// std::nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text);

// Trims a message for humans: no trailing newlines or spaces, at most `max` bytes ("..."
// when cut), valid UTF-8 (invalid bytes become U+FFFD).
std::string shorten_message(std::string text, std::size_t max = 500);

}  // namespace stargate
