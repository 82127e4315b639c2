// Terminal-aware output.
#include "cli/output.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shared/json.hpp"

namespace stargate::cli {
namespace {

// Set while a progress line is on the terminal, for the SIGINT handler.
volatile sig_atomic_t progress_visible = 0;

bool terminal(int fd) {
  if (!isatty(fd)) return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

const char* state_colour(const std::string& state) {
  if (state == "completed") return "32";                                              // green
  if (state == "failed" || state == "rejected" || state == "cancelled") return "31";  // red
  return "33";                                                                        // yellow
}

}  // namespace

std::string plain_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return dump_json(value);
}

Output::Output(bool json, bool quiet)
    : json_(json),
      quiet_(quiet),
      stdout_tty_(terminal(STDOUT_FILENO)),
      stderr_tty_(terminal(STDERR_FILENO)),
      colour_(stdout_tty_ && std::getenv("NO_COLOR") == nullptr) {}

std::string Output::paint(const std::string& value, const char* colour) const {
  if (!colour_) return value;
  return std::string("\033[") + colour + "m" + value + "\033[0m";
}

void Output::document(const nlohmann::json& value) const {
  end_progress();
  const auto dumped =
      value.dump(stdout_tty_ ? 2 : -1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fprintf(stdout, "%s\n", dumped.c_str());
  std::fflush(stdout);
}

void Output::line(const std::string& value) const {
  end_progress();
  std::fprintf(stdout, "%s\n", value.c_str());
  std::fflush(stdout);
}

void Output::error(const std::string& value) const {
  end_progress();
  std::fprintf(stderr, "stargate: %s\n", value.c_str());
}

void Output::note(const std::string& value) const {
  if (quiet_) return;
  end_progress();
  std::fprintf(stderr, "%s\n", value.c_str());
}

void Output::record(const nlohmann::json& r) const {
  end_progress();
  const auto field = [&](const char* name) { return r.contains(name) ? plain_text(r[name]) : ""; };
  const auto row = [](const std::string& label, const std::string& value) {
    if (!value.empty()) std::fprintf(stdout, "%-12s %s\n", label.c_str(), value.c_str());
  };
  const std::string state = field("state");
  row("id", field("clientProcessId"));
  row("type", field("processType"));
  row("state", paint(state, state_colour(state)));
  row("process", field("processId"));
  if (r.value("progress", 0) > 0 || state == "processing") {
    row("progress", std::to_string(r.value("progress", 0)) + "%");
  }
  row("step", field("currentStep"));
  row("attempts", r.value("attempts", 0) > 0 ? std::to_string(r.value("attempts", 0)) : "");
  row("created", field("createdAt"));
  row("submitted", field("submittedAt"));
  row("updated", field("updatedAt"));
  row("finished", field("completedAt"));
  row("last error", field("lastError"));
  if (r.contains("error") && r["error"].is_object()) {
    const auto& e = r["error"];
    row("error", plain_text(e.value("code", nlohmann::json())) + ": " +
                     plain_text(e.value("message", nlohmann::json())));
    if (e.contains("details") && !e["details"].empty()) row("details", dump_json(e["details"]));
  }
  if (r.contains("result") && !r["result"].is_null()) {
    std::fprintf(stdout, "%-12s ", "result");
    const std::string pretty = r["result"].dump(2);
    // Indent continuation lines under the value column.
    for (const char c : pretty) {
      std::fputc(c, stdout);
      if (c == '\n') std::fprintf(stdout, "%-12s ", "");
    }
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
}

void Output::progress(const nlohmann::json& r) const {
  if (!stderr_tty_ || quiet_) return;
  std::string line = plain_text(r.value("clientProcessId", nlohmann::json())) + "  " +
                     plain_text(r.value("state", nlohmann::json()));
  if (r.value("progress", 0) > 0) line += "  " + std::to_string(r.value("progress", 0)) + "%";
  const std::string step = plain_text(r.value("currentStep", nlohmann::json()));
  if (!step.empty()) line += "  " + step;
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  progress_shown_ = true;
  progress_visible = 1;
}

void Output::fields(const std::vector<std::pair<std::string, std::string>>& rows) const {
  end_progress();
  std::size_t width = 0;
  for (const auto& [label, value] : rows)
    width = std::max(width, label.size());
  for (const auto& [label, value] : rows) {
    std::fprintf(stdout, "%-*s  %s\n", static_cast<int>(width), label.c_str(), value.c_str());
  }
  std::fflush(stdout);
}

void Output::table(const std::vector<std::string>& header,
                   const std::vector<std::vector<std::string>>& rows, int state_column) const {
  end_progress();
  std::vector<std::size_t> widths(header.size(), 0);
  for (std::size_t i = 0; i < header.size(); ++i)
    widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  const auto print = [&](const std::vector<std::string>& row, bool is_header) {
    std::string line;
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      std::string cell = row[i];
      const std::size_t pad = widths[i] - cell.size();
      if (!is_header && static_cast<int>(i) == state_column) cell = paint(cell, state_colour(cell));
      line += cell;
      if (i + 1 < row.size()) line += std::string(pad + 2, ' ');
    }
    std::fprintf(stdout, "%s\n", line.c_str());
  };
  print(header, true);
  for (const auto& row : rows)
    print(row, false);
  std::fflush(stdout);
}

namespace {
extern "C" void on_interrupt(int) {
  if (progress_visible) {
    const char clear[] = "\r\033[K";
    [[maybe_unused]] auto written = ::write(STDERR_FILENO, clear, sizeof clear - 1);
  }
  _exit(130);
}
}  // namespace

void Output::clear_progress_on_interrupt() const {
  if (!stderr_tty_) return;
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
}

void Output::end_progress() const {
  if (!progress_shown_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  progress_shown_ = false;
  progress_visible = 0;
}

}  // namespace stargate::cli
