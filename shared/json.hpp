// Reading JSON text from outside (request bodies, --data, files) with limits, and errors
// that say where the text went wrong.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "shared/expected.hpp"

namespace stargate {

struct JsonLimits {
  std::size_t max_bytes = 1 << 20;  // 1 MiB
  std::size_t max_depth = 32;       // nesting of objects and arrays
};

struct JsonError {
  std::string message;  // "line 3, column 7: unexpected '}'"
  std::size_t line = 0;
  std::size_t column = 0;
  // kInvalid: well-formed text that StarGate refuses: a number out of range (1e999), a key
  // an object repeats, a NUL character in a string.
  enum class Kind { kSyntax, kTooLarge, kTooDeep, kInvalid } kind = Kind::kSyntax;
};

// Parses `text`, refusing (without parsing) text over max_bytes or nested deeper than
// max_depth, so hostile input costs little. Also refused: invalid UTF-8, numbers no double
// holds, an object that repeats a key (RFC 7493 I-JSON), and NUL characters in strings or
// keys. Never throws; error messages hold no raw bytes of `text`.
Expected<nlohmann::json, JsonError> parse_json(std::string_view text, JsonLimits limits = {});

// Compact JSON text of `value`. Never throws: a string that is not valid UTF-8 (which
// parse_json() never returns, but a value built from other bytes may hold) has its bad
// bytes replaced by U+FFFD.
std::string dump_json(const nlohmann::json& value);

// The JSON pointer ("/items/0/sku") of the first string or object key in `value` longer
// than `max_bytes`, or std::nullopt. Recursion is bounded by the depth parse_json() allowed.
std::optional<std::string> find_long_string(const nlohmann::json& value, std::size_t max_bytes);

// The 1-based line and column of byte `offset` in `text`.
std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t offset);

}  // namespace stargate
