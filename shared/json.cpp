// JSON parsing with size and depth limits and positioned errors.
#include "shared/json.hpp"

namespace stargate {
namespace {

// Deepest nesting of [ and { outside strings, stopping early once past `limit`.
// Returns the byte offset where the limit was passed, or npos.
std::size_t find_too_deep(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

std::string at(std::size_t line, std::size_t column) {
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace

std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t offset) {
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

std::optional<std::string> find_long_string(const nlohmann::json& value, std::size_t max_bytes) {
  if (value.is_string()) {
    if (value.get_ref<const std::string&>().size() > max_bytes) return std::string();
    return std::nullopt;
  }
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (key.size() > max_bytes) return "/" + key.substr(0, 32) + "...";
      if (auto inner = find_long_string(item, max_bytes)) return "/" + key + *inner;
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (auto inner = find_long_string(value[i], max_bytes)) {
        return "/" + std::to_string(i) + *inner;
      }
    }
  }
  return std::nullopt;
}

Expected<nlohmann::json, JsonError> parse_json(std::string_view text, JsonLimits limits) {
  if (text.size() > limits.max_bytes) {
    return Unexpected{JsonError{"JSON text is " + std::to_string(text.size()) +
                                    " bytes, more than the limit of " +
                                    std::to_string(limits.max_bytes),
                                0, 0, JsonError::Kind::kTooLarge}};
  }
  if (const auto deep = find_too_deep(text, limits.max_depth); deep != std::string_view::npos) {
    const auto [line, column] = line_and_column(text, deep);
    return Unexpected{JsonError{
        at(line, column) + ": nested deeper than " + std::to_string(limits.max_depth) + " levels",
        line, column, JsonError::Kind::kTooDeep}};
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann reports the byte just after the point of failure (1-based).
    const std::size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    const auto [line, column] = line_and_column(text, offset);
    std::string what = e.what();
    // Keep nlohmann's explanation, drop its "[json.exception.parse_error.101] parse error at
    // line 1, column 2: " prefix in favour of our own position.
    if (const auto colon = what.find(": syntax error"); colon != std::string::npos) {
      what = what.substr(colon + 2);
    } else if (const auto pos = what.rfind("]: "); pos != std::string::npos) {
      what = what.substr(pos + 3);
    }
    return Unexpected{
        JsonError{at(line, column) + ": " + what, line, column, JsonError::Kind::kSyntax}};
  }
}

}  // namespace stargate
