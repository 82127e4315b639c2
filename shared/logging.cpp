// spdlog formatters for terminals and JSON lines, and a sink for journald's native protocol.
#include "shared/logging.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <array>
#include <mutex>
#include <utility>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "shared/text.hpp"

namespace stargate {
namespace {

enum class Target { kTerminal, kJournal, kJson };

thread_local LogFields current_fields;

// Where journald takes records in its native protocol.
constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

// A field's value as logged: at most 256 bytes of it, never a line break or an escape.
std::string field_value(std::string_view value) {
  return escape_text(value, 256);
}

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
        const LogFields& fields = current_fields;
        for (const auto& [key, value] : {std::pair{"correlationId", &fields.correlation_id},
                                         std::pair{"tenant", &fields.tenant},
                                         std::pair{"clientProcessId", &fields.client_process_id},
                                         std::pair{"processId", &fields.process_id}}) {
          if (!value->empty()) record[key] = *value;
        }
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

// Records sent to journald with its native protocol (sd_journal_sendv): MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER and this thread's LogFields, so that journalctl can select one request's
// or process's records. spdlog's own systemd_sink sends no fields of ours and throws when
// journald is gone; a record journald does not take goes to stderr as a line instead.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JournalSink(std::string identifier) : identifier_("SYSLOG_IDENTIFIER=" + identifier) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view raw(msg.payload.data(), msg.payload.size());
    const std::string message = "MESSAGE=" + escape_text(raw);
    const std::string priority = "PRIORITY=" + std::to_string(syslog_priority(msg.level));
    std::array<std::string, 4> extra;
    std::size_t extras = 0;
    const LogFields& fields = current_fields;
    for (const auto& [name, value] : {std::pair{"CORRELATION_ID=", &fields.correlation_id},
                                      std::pair{"TENANT=", &fields.tenant},
                                      std::pair{"CLIENT_PROCESS_ID=", &fields.client_process_id},
                                      std::pair{"PROCESS_ID=", &fields.process_id}}) {
      if (!value->empty()) extra[extras++] = name + field_value(*value);
    }
    std::array<iovec, 7> parts{};
    std::size_t count = 0;
    for (const std::string* part : {&message, &priority, &std::as_const(identifier_)}) {
      parts[count++] = {const_cast<char*>(part->data()), part->size()};
    }
    for (std::size_t i = 0; i < extras; ++i) {
      parts[count++] = {const_cast<char*>(extra[i].data()), extra[i].size()};
    }
    if (sd_journal_sendv(parts.data(), static_cast<int>(count)) < 0) {
      spdlog::memory_buf_t line;
      fallback_.format(msg, line);
      [[maybe_unused]] const auto written = ::write(STDERR_FILENO, line.data(), line.size());
    }
  }
  void flush_() override {}

 private:
  std::string identifier_;
  LineFormatter fallback_{Target::kJournal};  // "<6>text", as journald reads stderr
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
  spdlog::sink_ptr sink;
  // sd_journal_sendv() drops records silently when journald's socket is missing; then (a
  // stream whose journald has gone) the lines on stderr are all there is.
  if (target == Target::kJournal && ::access(kJournalSocket, W_OK) == 0) {
    sink = std::make_shared<JournalSink>(options.program);
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(std::make_unique<LineFormatter>(target));
  }
  auto logger = std::make_shared<spdlog::logger>(options.program, std::move(sink));
  logger->set_level(*level);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return {};
}

LogFields& log_fields() {
  return current_fields;
}

LogScope::LogScope(LogFields fields) : saved_(std::exchange(current_fields, std::move(fields))) {}

LogScope::~LogScope() {
  current_fields = std::move(saved_);
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
