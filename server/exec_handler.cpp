// Running a handler program: pipes, a deadline, progress lines and the result.
#include "server/exec_handler.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "shared/json.hpp"

extern char** environ;

namespace stargate::server {
namespace {

constexpr std::size_t kMaxStderrKept = 64 * 1024;
constexpr std::size_t kMaxMessage = 500;
constexpr int kExitTempFail = 75;  // sysexits.h EX_TEMPFAIL

struct Pipe {
  int read = -1;
  int write = -1;
  ~Pipe() {
    if (read >= 0) ::close(read);
    if (write >= 0) ::close(write);
  }
};

bool make_pipe(Pipe& p) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  p.read = fds[0];
  p.write = fds[1];
  return true;
}

// The program's stdin is one end of a socket pair rather than a pipe, so that writing to a
// program that has already exited gives EPIPE through send(MSG_NOSIGNAL) instead of a
// SIGPIPE for the whole server. `read` is the program's end.
bool make_stdin(Pipe& p) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return false;
  ::shutdown(fds[0], SHUT_WR);
  ::shutdown(fds[1], SHUT_RD);
  p.read = fds[0];
  p.write = fds[1];
  return true;
}

// Trims `text` to a one-paragraph message of at most kMaxMessage bytes.
std::string shorten(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  if (text.size() > kMaxMessage) text = text.substr(0, kMaxMessage - 3) + "...";
  return text;
}

// The environment of the program: ours (PATH, locale, ...) plus who it works for.
std::vector<std::string> child_environment(const HandlerInput& input) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "STARGATE_", 9) != 0) env.emplace_back(*e);
  }
  env.push_back("STARGATE_PROCESS_ID=" + input.process_id);
  env.push_back("STARGATE_PROCESS_TYPE=" + input.process_type);
  env.push_back("STARGATE_TENANT=" + input.tenant);
  return env;
}

HandlerOutcome failed(const char* code, const std::string& message, nlohmann::json details,
                      bool retryable) {
  return HandlerOutcome::failure({code, shorten(message), std::move(details)}, retryable);
}

}  // namespace

HandlerOutcome ExecHandler::run(const HandlerInput& input, HandlerContext& context) {
  if (settings_.command.empty()) return failed("EXEC_FAILED", "no command configured", {}, false);
  Pipe in, out, err;
  if (!make_stdin(in) || !make_pipe(out) || !make_pipe(err)) {
    return failed("EXEC_FAILED", std::string("pipe: ") + std::strerror(errno), {}, true);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read, 0);
  posix_spawn_file_actions_adddup2(&actions, out.write, 1);
  posix_spawn_file_actions_adddup2(&actions, err.write, 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own process group, so that stopping it also stops what it started.
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attributes, 0);
  // The server blocks SIGTERM and ignores SIGPIPE; the program gets the usual behaviour.
  sigset_t none, defaults;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attributes, &defaults);

  std::vector<char*> argv;
  for (const auto& arg : settings_.command)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  auto env_strings = child_environment(input);
  std::vector<char*> env;
  for (auto& e : env_strings)
    env.push_back(e.data());
  env.push_back(nullptr);

  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    return failed("EXEC_FAILED", settings_.command[0] + ": " + std::strerror(spawned), {}, false);
  }
  ::close(in.read);
  ::close(out.write);
  ::close(err.write);
  in.read = out.write = err.write = -1;

  // The request. A program may exit without reading it: that is not an error.
  const std::string request = nlohmann::json{{"processId", input.process_id},
                                             {"processType", input.process_type},
                                             {"tenant", input.tenant},
                                             {"data", input.data}}
                                  .dump() +
                              "\n";
  std::size_t written = 0;

  const auto deadline = std::chrono::steady_clock::now() + settings_.timeout;
  std::size_t stdout_bytes = 0;
  std::string stderr_text, pending_line, last_line;
  bool too_much = false, timed_out = false, stopping = false;
  int open_streams = 2;
  while (open_streams > 0) {
    if (written < request.size() && in.write >= 0) {
      const ssize_t n = ::send(in.write, request.data() + written, request.size() - written,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN) written = request.size();  // it closed stdin: fine
    }
    if (written >= request.size() && in.write >= 0) {
      ::close(in.write);
      in.write = -1;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
      break;
    }
    if (!context.pause(Duration::zero())) {
      stopping = true;
      break;
    }
    pollfd fds[2] = {{out.read, POLLIN, 0}, {err.read, POLLIN, 0}};
    if (::poll(fds, 2, 100) < 0 && errno != EINTR) break;
    char buffer[8192];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        int& fd = i == 0 ? out.read : err.read;
        ::close(fd);
        fd = -1;  // poll() skips negative descriptors
        --open_streams;
        continue;
      }
      const std::string_view chunk(buffer, static_cast<std::size_t>(n));
      if (i == 1) {
        if (stderr_text.size() < kMaxStderrKept) stderr_text.append(chunk);
        continue;
      }
      stdout_bytes += chunk.size();
      if (stdout_bytes > settings_.max_output_bytes) {
        too_much = true;
        break;
      }
      pending_line.append(chunk);
      for (std::size_t eol; (eol = pending_line.find('\n')) != std::string::npos;) {
        std::string line = pending_line.substr(0, eol);
        pending_line.erase(0, eol + 1);
        if (line.empty()) continue;
        auto parsed = parse_json(line, {settings_.max_output_bytes, 64});
        if (parsed && parsed->is_object() && parsed->contains("progress") &&
            (*parsed)["progress"].is_number()) {
          const auto step = parsed->value("currentStep", std::string());
          context.progress(static_cast<int>((*parsed)["progress"].get<double>()), step);
        }
        last_line = std::move(line);
      }
    }
    if (too_much) break;
  }
  if (!pending_line.empty()) last_line = pending_line;

  int status = 0;
  if (timed_out || stopping || too_much || open_streams > 0) {
    ::kill(-pid, SIGTERM);
    const auto grace = std::chrono::steady_clock::now() + settings_.kill_grace;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= grace) {
        ::kill(-pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      ::usleep(20'000);
    }
  } else {
    ::waitpid(pid, &status, 0);
  }
  if (stopping) return HandlerOutcome::stopped();
  if (timed_out) {
    return failed(
        "TIMEOUT",
        settings_.command[0] + " did not finish within " + format_duration(settings_.timeout), {},
        true);
  }
  if (too_much) {
    return failed("OUTPUT_TOO_LARGE",
                  settings_.command[0] + " printed more than " +
                      std::to_string(settings_.max_output_bytes) + " bytes",
                  {}, false);
  }
  if (WIFSIGNALED(status)) {
    return failed("EXEC_FAILED",
                  settings_.command[0] + " was killed by signal " +
                      std::to_string(WTERMSIG(status)) +
                      (stderr_text.empty() ? "" : ": " + stderr_text),
                  {{"signal", WTERMSIG(status)}}, true);
  }
  const int code = WEXITSTATUS(status);
  if (code != 0) {
    return failed("EXEC_FAILED",
                  stderr_text.empty()
                      ? settings_.command[0] + " exited with status " + std::to_string(code)
                      : stderr_text,
                  {{"exitCode", code}}, code == kExitTempFail);
  }
  auto result = parse_json(last_line, {settings_.max_output_bytes, 64});
  if (last_line.empty() || !result || !result->is_object()) {
    return failed("OUTPUT_INVALID",
                  settings_.command[0] + " did not print a JSON object as its last line" +
                      (result ? "" : ": " + result.error().message),
                  {}, false);
  }
  return HandlerOutcome::success(std::move(*result));
}

}  // namespace stargate::server
