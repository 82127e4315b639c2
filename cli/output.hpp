// The CLI's one output contract: data on stdout, diagnostics on stderr; colour and the
// progress line only on a terminal whose TERM is not "dumb", and never with NO_COLOR set.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace stargate::cli {

// A value of a JSON record as text: a string as it is, null as nothing, anything else as JSON.
std::string plain_text(const nlohmann::json& value);

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

  // "label   value" lines, labels padded to one width.
  void fields(const std::vector<std::pair<std::string, std::string>>& rows) const;

  // Rows under a header, columns padded to their widest cell; `state_column` (or -1) is
  // coloured by state on a terminal.
  void table(const std::vector<std::string>& header,
             const std::vector<std::vector<std::string>>& rows, int state_column = -1) const;

  // The single updating line on stderr while waiting (only on a terminal).
  void progress(const nlohmann::json& record) const;
  void end_progress() const;
  // While a progress line shows, Ctrl-C clears it before the program ends (exit 130); the
  // process being waited for is not affected.
  void clear_progress_on_interrupt() const;

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
