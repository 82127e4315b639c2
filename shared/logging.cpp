// spdlog formatters for terminals, journald and JSON lines.
#include "shared/logging.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "shared/text.hpp"

namespace stargate {
namespace {

enum class Target { kTerminal, kJournal, kJson };

// syslog priorities for journald's SyslogLevelPrefix.
int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;
    case spdlog::level::info:
      return 6;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::err:
      return 3;
    case spdlog::level::critical:
      return 1;  // alert: someone should look now
    default:
      return 6;
  }
}

std::string utc_time(const spdlog::details::log_msg& msg, bool iso) {
  const auto since = msg.time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since - seconds);
  const std::time_t t = seconds.count();
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[40];
  std::strftime(text, sizeof text, iso ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &utc);
  char out[64];
  std::snprintf(out, sizeof out, iso ? "%s.%03dZ" : "%s.%03d", text,
                static_cast<int>(millis.count()));
  return out;
}

class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(Target target) : target_(target) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    // One record, one line: a newline or an escape sequence that came from outside (a
    // request path, a handler's stderr) cannot forge a record or drive the terminal.
    const std::string_view raw(msg.payload.data(), msg.payload.size());
    const std::string text = target_ == Target::kJson ? std::string(raw) : escape_text(raw);
    const auto level = spdlog::level::to_string_view(msg.level);
    std::string line;
    switch (target_) {
      case Target::kJournal:
        line.append("<").append(std::to_string(syslog_priority(msg.level))).append(">");
        line.append(text);
        break;
      case Target::kTerminal:
        line.append(utc_time(msg, false)).append(" ").append(level.data(), level.size());
        line.resize(std::max<std::size_t>(line.size(), 32), ' ');
        line.append(text);
        break;
      case Target::kJson: {
        nlohmann::json record = {
            {"time", utc_time(msg, true)},
            {"level", std::string_view(level.data(), level.size())},
            {"logger", std::string_view(msg.logger_name.data(), msg.logger_name.size())},
            {"msg", text},
        };
        line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        break;
      }
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(target_);
  }

 private:
  Target target_;
};

Expected<spdlog::level::level_enum> parse_level(std::string_view name) {
  const auto level = spdlog::level::from_str(std::string(name));
  // from_str answers "off" for anything it does not know.
  if (level == spdlog::level::off && name != "off") {
    return fail("unknown log level '" + escape_text(name, 32) +
                "' (trace, debug, info, warn, error, critical, off)");
  }
  return level;
}

}  // namespace

Expected<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return fail("unknown log format '" + escape_text(text, 32) + "' (text or json)");
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long device = 0, inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  return device == st.st_dev && inode == st.st_ino;
}

Status setup_logging(const LogOptions& options) {
  auto level = parse_level(options.level);
  if (!level) return Unexpected{level.error()};
  Target target = Target::kTerminal;
  if (options.format == LogFormat::kJson) {
    target = Target::kJson;
  } else if (stderr_is_journal()) {
    target = Target::kJournal;
  }
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(std::make_unique<LineFormatter>(target));
  auto logger = std::make_shared<spdlog::logger>(options.program, std::move(sink));
  logger->set_level(*level);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return {};
}

void log_error_lines(std::string_view prefix, std::string_view text) {
  while (!text.empty()) {
    const auto end = text.find('\n');
    const auto line = text.substr(0, end);
    if (!line.empty()) spdlog::error("{}{}", prefix, line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

Status set_log_level(std::string_view name) {
  auto level = parse_level(name);
  if (!level) return Unexpected{level.error()};
  spdlog::set_level(*level);
  return {};
}

}  // namespace stargate
