// The CLI's one output contract: data on stdout, diagnostics on stderr; colour and the
// progress line only on a terminal whose TERM is not "dumb", and never with NO_COLOR set.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace stargate::cli {

class Output {
 public:
  Output(bool json, bool quiet);

  bool json() const { return json_; }
  bool quiet() const { return quiet_; }
  bool progress_enabled() const { return stderr_tty_; }

  // A JSON document on stdout (pretty on a terminal, one line otherwise).
  void document(const nlohmann::json& value) const;
  // A line on stdout.
  void line(const std::string& text) const;
  // A diagnostic on stderr: "stargate: text". Shown even with --quiet.
  void error(const std::string& text) const;
  // A hint on stderr, suppressed by --quiet.
  void note(const std::string& text) const;

  // The labelled lines of `stargate status` for a record of the socket API.
  void record(const nlohmann::json& record) const;

  // The single updating line on stderr while waiting (only on a terminal).
  void progress(const nlohmann::json& record) const;
  void end_progress() const;

 private:
  std::string paint(const std::string& text, const char* colour) const;

  bool json_;
  bool quiet_;
  bool stdout_tty_;
  bool stderr_tty_;
  bool colour_;
  mutable bool progress_shown_ = false;
};

}  // namespace stargate::cli
