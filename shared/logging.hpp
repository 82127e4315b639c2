// Logging setup shared by the daemon and the server: spdlog to stderr, readable lines on a
// terminal, JSON lines with --log-format json, and, when stderr is journald's, records sent
// with journald's native protocol carrying fields an operator can filter on
// (journalctl CLIENT_PROCESS_ID=...).
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

// What the thread that logs is working on, added to each record it logs: journald fields
// (CORRELATION_ID=..., in the native protocol) and keys of JSON lines (correlationId).
// Empty fields are left out.
struct LogFields {
  std::string correlation_id;     // CORRELATION_ID, correlationId
  std::string tenant;             // TENANT, tenant
  std::string client_process_id;  // CLIENT_PROCESS_ID, clientProcessId
  std::string process_id;         // PROCESS_ID, processId
};

// This thread's fields. Set them within a LogScope, so that they do not outlive the work.
LogFields& log_fields();

// Gives this thread `fields` until it ends, then puts back the ones it had.
class LogScope {
 public:
  explicit LogScope(LogFields fields);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  LogFields saved_;
};

// Installs the default logger. Fails on an unknown level name, changing nothing.
Status setup_logging(const LogOptions& options);

// The level names the programs take (--log-level, [log] level).
inline constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};

// Whether `name` is one of kLogLevels. Header-only, so that the configuration parsers (and
// their fuzz targets) need no logger.
inline bool is_log_level(std::string_view name) {
  for (const auto level : kLogLevels) {
    if (name == level) return true;
  }
  return false;
}

// Changes the level of the default logger (SIGHUP reload). Fails on an unknown name.
Status set_log_level(std::string_view level);

// Logs each line of `text` (a configuration error lists one problem a line) as its own error
// record, after `prefix`: log records never span lines.
void log_error_lines(std::string_view prefix, std::string_view text);

// Whether stderr is connected to journald ($JOURNAL_STREAM names stderr's device and inode).
bool stderr_is_journal();

}  // namespace stargate
