// Terminal-aware output.
#include "cli/output.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace stargate::cli {
namespace {

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

std::string text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

}  // namespace

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
  const auto field = [&](const char* name) { return r.contains(name) ? text(r[name]) : ""; };
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
    row("error", text(e.value("code", nlohmann::json())) + ": " +
                     text(e.value("message", nlohmann::json())));
    if (e.contains("details") && !e["details"].empty()) row("details", e["details"].dump());
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
  std::string line = text(r.value("clientProcessId", nlohmann::json())) + "  " +
                     text(r.value("state", nlohmann::json()));
  if (r.value("progress", 0) > 0) line += "  " + std::to_string(r.value("progress", 0)) + "%";
  const std::string step = text(r.value("currentStep", nlohmann::json()));
  if (!step.empty()) line += "  " + step;
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  progress_shown_ = true;
}

void Output::end_progress() const {
  if (!progress_shown_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  progress_shown_ = false;
}

}  // namespace stargate::cli
