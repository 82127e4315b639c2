// Test support: temporary directories, and real child processes (the project's binaries)
// started, watched and stopped by PID.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace stargate::test {

// A fresh directory under $TMPDIR, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The path of one of the project's programs in the build tree.
std::string binary(const std::string& name);

std::string read_file(const std::string& path);
// How often `what` occurs in `text` (log lines, say).
std::size_t count(const std::string& text, const std::string& what);
// How many descriptors the process has open (/proc/PID/fd).
std::size_t count_descriptors(pid_t pid);
// Lowers a running process's soft descriptor limit to `headroom` above what it has open
// (to make it run out), and puts the old limit back at restore() or destruction.
class TightDescriptorLimit {
 public:
  TightDescriptorLimit(pid_t pid, std::size_t headroom);
  ~TightDescriptorLimit() { restore(); }
  TightDescriptorLimit(const TightDescriptorLimit&) = delete;
  // Whether the limit was lowered; if not, error() says why (prlimit refused here).
  bool applied() const { return applied_; }
  const std::string& error() const { return error_; }
  // Descriptors the process had open before.
  std::size_t baseline() const { return baseline_; }
  // True when the old limit is back (or was never changed).
  bool restore();

 private:
  pid_t pid_;
  std::size_t baseline_;
  rlimit before_{};
  bool applied_ = false;
  std::string error_;
};

// A number from /proc/PID/status ("Threads", "VmRSS" in KiB); 0 when unknown.
std::size_t proc_status(pid_t pid, const std::string& field);
void write_file(const std::string& path, const std::string& text, unsigned mode = 0644);

// Polls `done` every 20 ms until it is true or `limit` passes; returns its last answer.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit);

// `extra_env` entries are NAME=VALUE (set or replace) or -NAME (remove from the inherited
// environment).

// A background process whose stdout and stderr go to `log_path`. Killed (SIGKILL) at
// destruction if still running.
class Child {
 public:
  // `listen_fd`, when not -1, is passed as descriptor 3 the way systemd's socket activation
  // does it (LISTEN_FDS=1, LISTEN_PID=the child's pid).
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
        const std::string& log_path, int listen_fd = -1);
  ~Child();
  Child(Child&& other) noexcept;
  Child(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal` and waits up to `limit` for the exit; SIGKILL after that. Returns the exit
  // status (128 + signal when killed by one).
  int stop(int signal, std::chrono::milliseconds limit = std::chrono::seconds(20));
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

// Runs a program on a new pseudo-terminal (so that it sees a TTY on stdin, stdout and
// stderr) and returns everything it wrote there; killed after `limit`.
RunResult run_in_terminal(const std::vector<std::string>& argv,
                          const std::vector<std::string>& extra_env = {},
                          std::chrono::milliseconds limit = std::chrono::seconds(60));

// Runs a program to its end with `input` on stdin; killed after `limit`.
RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {},
              const std::string& input = "",
              std::chrono::milliseconds limit = std::chrono::seconds(60));

}  // namespace stargate::test
