// Child processes and temporary directories for tests.
#include "tests/support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace stargate::test {
namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// fork + exec with stdin/stdout/stderr redirected to the given descriptors.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
            int in_fd, int out_fd, int err_fd, int listen_fd = -1) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e)
    env_strings.emplace_back(*e);
  for (const auto& extra : extra_env) {
    const bool unset = extra.front() == '-';
    const auto name = unset ? extra.substr(1) + "=" : extra.substr(0, extra.find('=') + 1);
    std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(name, 0) == 0; });
    if (!unset) env_strings.push_back(extra);
  }
  std::vector<char*> args, env;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env_strings)
    env.push_back(const_cast<char*>(e.c_str()));
  // Room for LISTEN_PID, filled in by the child (only it knows its pid); no allocation
  // after fork().
  char listen_pid[32] = "LISTEN_PID=";
  char listen_fds[] = "LISTEN_FDS=1";
  if (listen_fd >= 0) {
    env.push_back(listen_pid);
    env.push_back(listen_fds);
  }
  env.push_back(nullptr);
  // A test binary killed (a ctest timeout, kill -9) must not leave its servers running: the
  // kernel kills the child when the thread that forked it ends. Only for children of the
  // main thread, which lasts as long as the test binary; a helper thread's children (which
  // that thread waits for) could otherwise die with it.
  const pid_t parent = getpid();
  const bool main_thread = gettid() == parent;
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (main_thread) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the parent died before prctl
    }
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    if (listen_fd >= 0) {
      dup2(listen_fd, 3);
      char digits[16];
      int n = 0;
      for (pid_t self = getpid(); self > 0; self /= 10) {
        digits[n++] = static_cast<char>('0' + self % 10);
      }
      char* out = listen_pid + 11;
      while (n > 0)
        *out++ = digits[--n];
      *out = '\0';
    }
    // A fresh process group, so that a test's Ctrl-C does not reach it first.
    setpgid(0, 0);
    execve(args[0], args.data(), env.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/stargate-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string binary(const std::string& name) {
  return std::string(STARGATE_BIN_DIR) + "/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1))
    ++n;
  return n;
}

std::size_t count_descriptors(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

TightDescriptorLimit::TightDescriptorLimit(pid_t pid, std::size_t headroom)
    : pid_(pid), baseline_(count_descriptors(pid)) {
  if (::prlimit(pid_, RLIMIT_NOFILE, nullptr, &before_) != 0) {
    error_ = std::strerror(errno);
    return;
  }
  // The soft limit only: raising it back needs no privilege.
  const rlimit tight{baseline_ + headroom, before_.rlim_max};
  if (::prlimit(pid_, RLIMIT_NOFILE, &tight, nullptr) != 0) {
    error_ = std::strerror(errno);
    return;
  }
  applied_ = true;
}

bool TightDescriptorLimit::restore() {
  if (!applied_) return true;
  if (::prlimit(pid_, RLIMIT_NOFILE, &before_, nullptr) != 0) return false;
  applied_ = false;
  return true;
}

std::size_t proc_status(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stoul(line.substr(field.size() + 1));
  }
  return 0;
}

void write_file(const std::string& path, const std::string& text, unsigned mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

Child::Child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
             const std::string& log_path, int listen_fd)
    : log_path_(log_path) {
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_ = spawn(argv, extra_env, null, log, log, listen_fd);
  ::close(log);
  ::close(null);
}

Child::Child(Child&& other) noexcept
    : pid_(other.pid_), status_(other.status_), log_path_(std::move(other.log_path_)) {
  other.pid_ = -1;
}

Child::~Child() {
  if (pid_ > 0 && running()) stop(SIGKILL);
}

bool Child::running() {
  if (pid_ <= 0 || status_ >= 0) return false;
  int status = 0;
  const pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    status_ = decode_status(status);
    return false;
  }
  return true;
}

int Child::stop(int signal, std::chrono::milliseconds limit) {
  if (!running()) return status_;
  ::kill(pid_, signal);
  if (!wait_until([&] { return !running(); }, limit)) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    status_ = decode_status(status);
  }
  return status_;
}

RunResult run_in_terminal(const std::vector<std::string>& argv,
                          const std::vector<std::string>& extra_env,
                          std::chrono::milliseconds limit) {
  int master = -1;
  std::vector<std::string> env = {"TERM=xterm"};  // unless the caller says otherwise
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  // Build everything before forking; the child only calls async-signal-safe functions.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e)
    env_strings.emplace_back(*e);
  for (const auto& extra : env) {
    const bool unset = extra.front() == '-';
    const auto name = unset ? extra.substr(1) + "=" : extra.substr(0, extra.find('=') + 1);
    std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(name, 0) == 0; });
    if (!unset) env_strings.push_back(extra);
  }
  std::vector<char*> args, envp;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env_strings)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) throw std::runtime_error("forkpty failed");
  if (pid == 0) {
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  std::string output;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    pollfd fd{master, POLLIN, 0};
    if (::poll(&fd, 1, 50) > 0) {
      char buffer[4096];
      const ssize_t n = ::read(master, buffer, sizeof buffer);
      if (n > 0) {
        output.append(buffer, static_cast<std::size_t>(n));
        continue;
      }
    }
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
  }
  ::close(master);
  return {decode_status(status), output, ""};
}

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
              const std::string& input, std::chrono::milliseconds limit) {
  TempDir dir;
  write_file(dir.file("in"), input);
  const int in = ::open(dir.file("in").c_str(), O_RDONLY | O_CLOEXEC);
  const int out = ::open(dir.file("out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  const int err = ::open(dir.file("err").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  const pid_t pid = spawn(argv, extra_env, in, out, err);
  ::close(in);
  ::close(out);
  ::close(err);
  int status = 0;
  const bool finished = wait_until([&] { return waitpid(pid, &status, WNOHANG) == pid; }, limit);
  if (!finished) {
    ::kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  return {decode_status(status), read_file(dir.file("out")), read_file(dir.file("err"))};
}

}  // namespace stargate::test
