// ConfigReader on toml11. The only translation unit that includes toml11 (it is slow to
// compile).
#include "shared/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include <toml.hpp>

#include "shared/text.hpp"

namespace stargate {

struct ConfigReader::Impl {
  toml::value root;

  // The array (or table) at `key`, marked as used; null when absent or of another type
  // (an error for `reader` then).
  const toml::value* container(ConfigReader& reader, const std::string& key, bool array);
};

namespace {

// Splits "a.b.c" into its parts.
std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(key);
  while (std::getline(in, part, '.'))
    parts.push_back(part);
  return parts;
}

// The value at a dotted key, or nullptr.
const toml::value* lookup(const toml::value& root, const std::string& key) {
  const toml::value* node = &root;
  for (const auto& part : split_key(key)) {
    if (!node->is_table()) return nullptr;
    const auto& table = node->as_table();
    const auto it = table.find(part);
    if (it == table.end()) return nullptr;
    node = &it->second;
  }
  return node;
}

const char* type_name(const toml::value& value) {
  switch (value.type()) {
    case toml::value_t::boolean:
      return "a boolean";
    case toml::value_t::integer:
      return "an integer";
    case toml::value_t::floating:
      return "a float";
    case toml::value_t::string:
      return "a string";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    default:
      return "a date or time";
  }
}

void collect_keys(const toml::value& node, const std::string& prefix,
                  std::vector<std::string>& out) {
  for (const auto& [name, value] : node.as_table()) {
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (value.is_table() && !value.as_table().empty()) {
      collect_keys(value, key, out);
    } else {
      out.push_back(key);
    }
  }
}

struct UnsafeLine {
  int line;
  std::string why;
};

bool is_bare_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

// What toml11 3.7 cannot be given. It parses arrays and inline tables recursively, so a
// file nested thousands of levels deep overflows the stack, and a key of thousands of
// dotted parts takes minutes and gigabytes; it reads a binary integer by doubling a signed
// 64-bit value once per digit, which overflows (undefined behaviour, in practice a wrong
// number) from the 63rd digit (found by fuzzing). This finds the first line that nests
// deeper than `limit` (brackets and braces outside strings and comments), has more than
// `limit` dots outside them (a key is on one line; values of ours hold dots only inside
// strings), or holds such a binary integer.
std::optional<UnsafeLine> first_unsafe_line(std::string_view text, int limit) {
  constexpr int kMaxBinaryDigits = 62;
  const std::string too_deep =
      "nested deeper than " + std::to_string(limit) + " levels (or a key of more parts)";
  int depth = 0;
  int dots = 0;
  int line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      dots = 0;
    } else if (c == '.') {
      if (++dots > limit) return UnsafeLine{line, too_deep};
    } else if (c == '0' && i + 1 < text.size() && text[i + 1] == 'b' &&
               (i == 0 || !is_bare_key_char(text[i - 1]))) {
      int digits = 0;
      for (i += 2; i < text.size() && (text[i] == '0' || text[i] == '1' || text[i] == '_'); ++i)
        digits += text[i] == '_' ? 0 : 1;
      --i;
      if (digits > kMaxBinaryDigits) {
        return UnsafeLine{line, "binary integer of more than " + std::to_string(kMaxBinaryDigits) +
                                    " digits (write it in decimal or hexadecimal)"};
      }
    } else if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n')
        ++i;
    } else if (c == '"' || c == '\'') {
      const std::string triple(3, c);
      const bool multiline = text.compare(i, 3, triple) == 0;
      const std::string_view close = multiline ? std::string_view(triple) : text.substr(i, 1);
      for (i += close.size(); i < text.size(); ++i) {
        if (text[i] == '\n') {
          ++line;
          if (!multiline) break;  // unterminated: toml11 reports it
        } else if (c == '"' && text[i] == '\\') {
          if (i + 1 < text.size() && text[i + 1] == '\n') ++line;
          ++i;  // an escaped character cannot close the string
        } else if (text.compare(i, close.size(), close) == 0) {
          i += close.size() - 1;
          break;
        }
      }
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return UnsafeLine{line, too_deep};
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

std::string without_trailing_newlines(std::string text) {
  // toml11's messages are several lines with a source excerpt; keep them whole but
  // without trailing newlines.
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  return text;
}

}  // namespace

ConfigReader::ConfigReader(std::unique_ptr<Impl> impl, std::string name)
    : impl_(std::move(impl)), name_(std::move(name)) {}
ConfigReader::ConfigReader(ConfigReader&&) noexcept = default;
ConfigReader& ConfigReader::operator=(ConfigReader&&) noexcept = default;
ConfigReader::~ConfigReader() = default;

Expected<ConfigReader> ConfigReader::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(path + ": cannot open: " + std::strerror(errno));
  constexpr std::size_t kMaxSize = 1 << 20;
  std::string text(kMaxSize + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxSize) return fail(path + ": larger than 1 MiB");
  return parse(text, path);
}

Expected<ConfigReader> ConfigReader::parse(const std::string& text, const std::string& name) {
  // TOML files are UTF-8. Found by fuzzing: toml11 3.7 overruns its buffer when it reports
  // invalid UTF-8 inside a literal string, so such a file never reaches it.
  for (std::size_t at = 0, line = 1; at < text.size();) {
    const std::size_t length = utf8_sequence_length(text, at);
    if (length == 0) {
      return fail(name + ":" + std::to_string(line) + ": not valid UTF-8 (TOML files are UTF-8)");
    }
    if (text[at] == '\n') ++line;
    at += length;
  }
  constexpr int kMaxNesting = 32;
  if (const auto unsafe = first_unsafe_line(text, kMaxNesting)) {
    return fail(name + ":" + std::to_string(unsafe->line) + ": " + unsafe->why);
  }
  try {
    std::istringstream in(text);
    auto impl = std::make_unique<Impl>();
    impl->root = toml::parse(in, name);
    return ConfigReader(std::move(impl), name);
  } catch (const toml::syntax_error& e) {
    return fail(without_trailing_newlines(e.what()));
  } catch (const std::exception& e) {
    return fail(name + ": " + e.what());
  }
}

void ConfigReader::error(const std::string& key, const std::string& message) {
  std::string where = name_;
  if (const auto* value = lookup(impl_->root, key)) {
    where += ":" + std::to_string(value->location().line());
  }
  errors_.push_back(where + ": " + key + ": " + message);
}

bool ConfigReader::has(const std::string& key) const {
  return lookup(impl_->root, key) != nullptr;
}

void ConfigReader::require(const std::string& key) {
  used_.insert(key);
  if (!has(key)) errors_.push_back(name_ + ": missing required key " + key);
}

std::string ConfigReader::string(const std::string& key, const std::string& fallback) {
  used_.insert(key);
  const auto* value = lookup(impl_->root, key);
  if (value == nullptr) return fallback;
  if (!value->is_string()) {
    error(key, std::string("expected a string, found ") + type_name(*value));
    return fallback;
  }
  return value->as_string().str;
}

std::int64_t ConfigReader::integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                                   std::int64_t max) {
  used_.insert(key);
  const auto* value = lookup(impl_->root, key);
  if (value == nullptr) return fallback;
  if (!value->is_integer()) {
    error(key, std::string("expected an integer, found ") + type_name(*value));
    return fallback;
  }
  const std::int64_t number = value->as_integer();
  if (number < min || number > max) {
    error(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return fallback;
  }
  return number;
}

bool ConfigReader::boolean(const std::string& key, bool fallback) {
  used_.insert(key);
  const auto* value = lookup(impl_->root, key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    error(key, std::string("expected true or false, found ") + type_name(*value));
    return fallback;
  }
  return value->as_boolean();
}

Duration ConfigReader::duration(const std::string& key, Duration fallback, Duration min) {
  const std::string text = string(key, "");
  if (!has(key) || text.empty()) {
    if (has(key) && lookup(impl_->root, key)->is_string()) error(key, "empty duration");
    return fallback;
  }
  auto parsed = parse_duration(text);
  if (!parsed) {
    error(key, parsed.error());
    return fallback;
  }
  if (*parsed < min) {
    error(key, "must be at least " + format_duration(min));
    return fallback;
  }
  return *parsed;
}

std::uint32_t ConfigReader::file_mode(const std::string& key, std::uint32_t fallback) {
  const std::string text = string(key, "");
  if (text.empty()) return fallback;
  if (text.size() > 4 || text.find_first_not_of("01234567") != std::string::npos) {
    error(key, "expected an octal mode such as \"0660\"");
    return fallback;
  }
  return static_cast<std::uint32_t>(std::stoul(text, nullptr, 8));
}

const toml::value* ConfigReader::Impl::container(ConfigReader& reader, const std::string& key,
                                                 bool array) {
  reader.used_.insert(key);
  const auto* value = lookup(root, key);
  if (value == nullptr) return nullptr;
  if (array ? !value->is_array() : !value->is_table()) {
    reader.error(key, std::string(array ? "expected an array of strings" : "expected a table") +
                          ", found " + type_name(*value));
    return nullptr;
  }
  return value;
}

std::vector<std::string> ConfigReader::string_list(const std::string& key) {
  std::vector<std::string> out;
  const auto* value = impl_->container(*this, key, true);
  if (value == nullptr) return out;
  for (const auto& item : value->as_array()) {
    if (!item.is_string()) {
      error(key, "every entry must be a string");
      return {};
    }
    out.push_back(item.as_string().str);
  }
  return out;
}

std::map<std::string, std::int64_t> ConfigReader::integer_table(const std::string& key) {
  std::map<std::string, std::int64_t> out;
  const auto* value = impl_->container(*this, key, false);
  if (value == nullptr) return out;
  for (const auto& [name, item] : value->as_table()) {
    used_.insert(key + "." + name);
    if (!item.is_integer()) {
      error(key + "." + name, std::string("expected an integer, found ") + type_name(item));
      continue;
    }
    out[name] = item.as_integer();
  }
  return out;
}

std::vector<std::string> ConfigReader::table_names(const std::string& key) {
  std::vector<std::string> out;
  const auto* value = impl_->container(*this, key, false);
  if (value == nullptr) return out;
  for (const auto& [name, item] : value->as_table()) {
    if (!item.is_table()) {
      error(key + "." + name, std::string("expected a table, found ") + type_name(item));
      continue;
    }
    used_.insert(key + "." + name);  // an empty [key.name] table is known too
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void ConfigReader::reject_unknown_keys() {
  std::vector<std::string> keys;
  collect_keys(impl_->root, "", keys);
  std::sort(keys.begin(), keys.end());  // toml11 tables are unordered; report in a stable order
  for (const auto& key : keys) {
    if (used_.count(key) != 0) continue;
    // An empty table ("[polling]" with every key commented out) is fine when the program
    // reads keys of that table.
    const auto* value = lookup(impl_->root, key);
    if (value != nullptr && value->is_table()) {
      const auto next = used_.lower_bound(key + ".");
      if (next != used_.end() && next->rfind(key + ".", 0) == 0) continue;
    }
    error(key, "unknown key");
  }
}

std::string ConfigReader::error_text() const {
  std::string text;
  for (const auto& e : errors_)
    text += e + "\n";
  return text;
}

}  // namespace stargate
