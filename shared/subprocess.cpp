// posix_spawn with pipes, poll() and a deadline.
#include "shared/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>

extern char** environ;

namespace stargate {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

bool make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  read_end.fd = fds[0];
  write_end.fd = fds[1];
  return true;
}

// stdin is one end of a socket pair rather than a pipe: writing to a program that has
// already exited then gives EPIPE through send(MSG_NOSIGNAL), never a SIGPIPE for us.
bool make_stdin(Fd& child_end, Fd& our_end) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return false;
  ::shutdown(fds[0], SHUT_WR);
  ::shutdown(fds[1], SHUT_RD);
  child_end.fd = fds[0];
  our_end.fd = fds[1];
  return true;
}

// What systemd hands to the service itself: a child must not talk to the service manager
// in our name, take our sockets or find our credentials.
constexpr std::array<std::string_view, 8> kServiceOnly = {
    "NOTIFY_SOCKET=", "WATCHDOG_USEC=",  "WATCHDOG_PID=",          "LISTEN_FDS=",
    "LISTEN_PID=",    "LISTEN_FDNAMES=", "CREDENTIALS_DIRECTORY=", "MAINPID="};

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const auto name = entry.substr(0, entry.find('=') + 1);
    if (std::find(kServiceOnly.begin(), kServiceOnly.end(), name) != kServiceOnly.end()) continue;
    bool replaced = false;
    for (const auto& x : extra)
      replaced = replaced || x.rfind(name, 0) == 0;
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// Stops the program's process group: SIGTERM, then SIGKILL after `grace`. Returns the status.
int stop_group(pid_t pid, Duration grace) {
  int status = 0;
  ::kill(-pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status;
}

}  // namespace

SubprocessResult run_subprocess(const SubprocessOptions& options) {
  SubprocessResult result;
  if (options.argv.empty() || options.argv.front().empty()) {
    result.error = "no program given";
    return result;
  }
  Fd child_in, in, out, child_out, err, child_err;
  if (!make_stdin(child_in, in) || !make_pipe(out, child_out) || !make_pipe(err, child_err)) {
    result.error = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_in.fd, 0);
  posix_spawn_file_actions_adddup2(&actions, child_out.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, child_err.fd, 2);
  // Nothing else of ours leaks into the program: not every library opens its descriptors
  // close-on-exec (Asio's listening socket does not), and a hook still running would keep
  // the daemon's socket alive after the daemon died.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own process group, so that stopping it also stops what it started; the usual
  // signal behaviour, whatever the caller blocks or ignores.
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t none, defaults;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  sigemptyset(&defaults);
  for (const int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP})
    sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attributes, &defaults);

  std::vector<char*> argv;
  for (const auto& arg : options.argv)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  auto env_strings = merged_environment(options.environment);
  std::vector<char*> env;
  for (auto& e : env_strings)
    env.push_back(e.data());
  env.push_back(nullptr);

  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    result.error = options.argv[0] + ": " + std::strerror(spawned);
    return result;
  }
  child_in.reset();
  child_out.reset();
  child_err.reset();

  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  std::size_t written = 0, stdout_bytes = 0;
  std::string pending_line;
  int open_streams = 2;
  result.kind = SubprocessResult::Kind::kExited;
  while (open_streams > 0) {
    if (in.fd >= 0 && written < options.input.size()) {
      const ssize_t n = ::send(in.fd, options.input.data() + written,
                               options.input.size() - written, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN) written = options.input.size();  // it stopped reading
    }
    if (in.fd >= 0 && written >= options.input.size()) in.reset();
    if (std::chrono::steady_clock::now() >= deadline) {
      result.kind = SubprocessResult::Kind::kTimedOut;
      break;
    }
    if (options.keep_going && !options.keep_going()) {
      result.kind = SubprocessResult::Kind::kStopped;
      break;
    }
    pollfd fds[2] = {{out.fd, POLLIN, 0}, {err.fd, POLLIN, 0}};
    if (::poll(fds, 2, 100) < 0 && errno != EINTR) break;
    char buffer[8192];
    for (int i = 0; i < 2 && result.kind == SubprocessResult::Kind::kExited; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      Fd& stream = i == 0 ? out : err;
      const ssize_t n = ::read(stream.fd, buffer, sizeof buffer);
      if (n <= 0) {
        stream.reset();  // poll() skips negative descriptors
        --open_streams;
        continue;
      }
      const std::string_view chunk(buffer, static_cast<std::size_t>(n));
      if (i == 1) {
        const auto room =
            options.max_error_bytes - std::min(options.max_error_bytes, result.errors.size());
        result.errors.append(chunk.substr(0, room));
        continue;
      }
      stdout_bytes += chunk.size();
      if (stdout_bytes > options.max_output_bytes) {
        result.kind = SubprocessResult::Kind::kTooMuchOutput;
        break;
      }
      pending_line.append(chunk);
      for (std::size_t eol; (eol = pending_line.find('\n')) != std::string::npos;) {
        std::string line = pending_line.substr(0, eol);
        pending_line.erase(0, eol + 1);
        if (line.empty()) continue;
        if (options.on_line) options.on_line(line);
        result.last_line = std::move(line);
      }
    }
    if (result.kind != SubprocessResult::Kind::kExited) break;
  }
  if (!pending_line.empty() && result.kind == SubprocessResult::Kind::kExited) {
    if (options.on_line) options.on_line(pending_line);
    result.last_line = pending_line;
  }

  int status = 0;
  if (result.kind == SubprocessResult::Kind::kExited && open_streams == 0) {
    // Its output is closed; it may still run (having passed the descriptors on): the time
    // limit still holds.
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        result.kind = SubprocessResult::Kind::kTimedOut;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (result.kind != SubprocessResult::Kind::kExited || open_streams > 0) {
    status = stop_group(pid, options.kill_grace);
  }
  if (result.kind == SubprocessResult::Kind::kExited) {
    if (WIFSIGNALED(status)) {
      result.kind = SubprocessResult::Kind::kSignaled;
      result.signal = WTERMSIG(status);
    } else {
      result.exit_code = WEXITSTATUS(status);
    }
  }
  return result;
}

}  // namespace stargate
