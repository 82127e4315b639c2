// Reading TOML configuration files (toml11 stays inside config.cpp). A ConfigReader hands
// out typed values with defaults and collects every problem, each naming the file, the line
// and the key, so that one run of --check-config reports them all.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "shared/duration.hpp"
#include "shared/expected.hpp"

namespace stargate {

class ConfigReader {
 public:
  // Reads and parses a file; fails with the file name, line and toml11's explanation.
  static Expected<ConfigReader> load(const std::string& path);
  // Parses text; `name` stands for the file name in messages.
  static Expected<ConfigReader> parse(const std::string& text, const std::string& name);

  ConfigReader(ConfigReader&&) noexcept;
  ConfigReader& operator=(ConfigReader&&) noexcept;
  ~ConfigReader();

  // Keys are dotted paths ("gateway.url"). An absent key yields the fallback; a key of the
  // wrong type or with a bad value yields the fallback and records an error.
  std::string string(const std::string& key, const std::string& fallback = "");
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                       std::int64_t max);
  bool boolean(const std::string& key, bool fallback);
  Duration duration(const std::string& key, Duration fallback, Duration min = Duration::zero());
  // A file mode written as a string of octal digits ("0660").
  std::uint32_t file_mode(const std::string& key, std::uint32_t fallback);
  std::vector<std::string> string_list(const std::string& key);
  // A table of name = integer pairs, e.g. a stock table.
  std::map<std::string, std::int64_t> integer_table(const std::string& key);

  // Records an error for a key that must be present.
  void require(const std::string& key);
  bool has(const std::string& key) const;

  // The names of the sub-tables of `key` ("process_types" -> {"order", "shipping"}).
  std::vector<std::string> table_names(const std::string& key);

  // Records an error naming the key (and its line) for a value that is well-typed but wrong.
  void error(const std::string& key, const std::string& message);

  // Records an error for every key in the file that no getter asked for: a typo should not
  // silently leave a setting at its default. Call it after reading everything.
  void reject_unknown_keys();

  bool ok() const { return errors_.empty(); }
  const std::vector<std::string>& errors() const { return errors_; }
  // All errors, one per line.
  std::string error_text() const;

  const std::string& file_name() const { return name_; }

 private:
  struct Impl;
  explicit ConfigReader(std::unique_ptr<Impl> impl, std::string name);

  std::unique_ptr<Impl> impl_;
  std::string name_;
  std::vector<std::string> errors_;
  std::set<std::string> used_;
};

}  // namespace stargate
