// Logging setup shared by the daemon and the server: spdlog to stderr, readable lines on a
// terminal, JSON lines with --log-format json, and no timestamps when journald (which adds
// its own) is reading stderr, with syslog priorities "<6>" it understands instead.
#pragma once

#include <string>
#include <string_view>

#include "shared/expected.hpp"

namespace stargate {

enum class LogFormat { kText, kJson };

struct LogOptions {
  LogFormat format = LogFormat::kText;
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  std::string program;         // logger name, e.g. "stargated"
};

Expected<LogFormat> parse_log_format(std::string_view text);

// Installs the default logger. Fails on an unknown level name, changing nothing.
Status setup_logging(const LogOptions& options);

// Changes the level of the default logger (SIGHUP reload). Fails on an unknown name.
Status set_log_level(std::string_view level);

// Logs each line of `text` (a configuration error lists one problem a line) as its own error
// record, after `prefix`: log records never span lines.
void log_error_lines(std::string_view prefix, std::string_view text);

// Whether stderr is connected to journald ($JOURNAL_STREAM names stderr's device and inode).
bool stderr_is_journal();

}  // namespace stargate
