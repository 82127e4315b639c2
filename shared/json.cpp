// JSON parsing with size and depth limits and positioned errors.
#include "shared/json.hpp"

#include <unordered_set>
#include <vector>

#include "shared/text.hpp"

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

// nlohmann's explanation without its "[json.exception.parse_error.101] parse error at line
// 1, column 2: " prefix (we give our own position) and without the "last read: '...'" part,
// which repeats the caller's raw bytes (invalid UTF-8 among them).
std::string explain(std::string what) {
  if (const auto colon = what.find(": syntax error"); colon != std::string::npos) {
    what = what.substr(colon + 2);
  } else if (const auto pos = what.rfind("]: "); pos != std::string::npos) {
    what = what.substr(pos + 3);
  } else if (const auto bracket = what.find("] "); bracket != std::string::npos) {
    what = what.substr(bracket + 2);
  }
  if (const auto last = what.find("; last read: '"); last != std::string::npos) {
    const auto expected = what.rfind("'; expected ");
    what = what.substr(0, last) +
           (expected != std::string::npos && expected > last ? what.substr(expected + 1) : "");
  }
  return escape_text(what, 300);
}

// Thrown from the parser callback to stop at the first key an object repeats.
struct DuplicateKey {
  std::string key;
};

// RFC 8259 leaves repeated names to the parser; different parsers keep different values,
// so a body that means one thing here and another to the next reader is refused.
class DuplicateKeyCheck {
 public:
  nlohmann::json::parser_callback_t callback() {
    return [this](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      using Event = nlohmann::json::parse_event_t;
      if (event == Event::object_start) {
        open_.emplace_back();
      } else if (event == Event::object_end) {
        if (!open_.empty()) open_.pop_back();
      } else if (event == Event::key && !open_.empty()) {
        auto& key = parsed.get_ref<const std::string&>();
        if (!open_.back().insert(key).second) throw DuplicateKey{key};
      }
      return true;
    };
  }

 private:
  std::vector<std::unordered_set<std::string>> open_;
};

// The JSON pointer of the first string or key holding a NUL byte, which C strings (SQLite
// text, log lines, a terminal) would silently cut short.
std::optional<std::string> find_nul(const nlohmann::json& value) {
  if (value.is_string()) {
    if (value.get_ref<const std::string&>().find('\0') != std::string::npos) return "";
    return std::nullopt;
  }
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (key.find('\0') != std::string::npos) return "/" + escape_text(key, 32);
      if (auto inner = find_nul(item)) return "/" + escape_text(key, 64) + *inner;
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (auto inner = find_nul(value[i])) return "/" + std::to_string(i) + *inner;
    }
  }
  return std::nullopt;
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

std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
  DuplicateKeyCheck duplicates;
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text, duplicates.callback());
  } catch (const DuplicateKey& e) {
    return Unexpected{JsonError{"duplicate key \"" + escape_text(e.key, 64) + "\"", 0, 0,
                                JsonError::Kind::kInvalid}};
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann reports the byte just after the point of failure (1-based).
    const std::size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    const auto [line, column] = line_and_column(text, offset);
    return Unexpected{JsonError{at(line, column) + ": " + explain(e.what()), line, column,
                                JsonError::Kind::kSyntax}};
  } catch (const nlohmann::json::out_of_range& e) {
    // 1e999: a number no double holds. nlohmann names the number; it is ASCII by then.
    std::string what = e.what();
    const auto quote = what.find('\'');
    const std::string number =
        quote == std::string::npos ? "" : what.substr(quote + 1, what.size() - quote - 2);
    const auto [line, column] =
        line_and_column(text, number.empty() ? 0 : std::min(text.find(number), text.size()));
    return Unexpected{
        JsonError{at(line, column) + ": number out of range: " + escape_text(number, 40), line,
                  column, JsonError::Kind::kInvalid}};
  } catch (const nlohmann::json::exception& e) {
    return Unexpected{
        JsonError{escape_text(explain(e.what()), 200), 0, 0, JsonError::Kind::kInvalid}};
  }
  if (auto where = find_nul(value)) {
    return Unexpected{JsonError{"a string holds a NUL character (\\u0000) at " +
                                    (where->empty() ? std::string("/") : *where),
                                0, 0, JsonError::Kind::kInvalid}};
  }
  return value;
}

}  // namespace stargate
