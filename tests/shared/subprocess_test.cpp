// Tests of shared/subprocess.cpp with /bin/sh.
#include "shared/subprocess.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

namespace stargate {
namespace {

using namespace std::chrono_literals;

SubprocessOptions shell(const std::string& script) {
  SubprocessOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.timeout = 20s;
  options.kill_grace = 500ms;
  return options;
}

TEST(Subprocess, PassesInputEnvironmentAndLines) {
  auto options = shell("read line; echo \"got $line\"; echo \"env $STARGATE_X\"; echo oops >&2");
  options.input = "hello\n";
  options.environment = {"STARGATE_X=42"};
  std::vector<std::string> lines;
  options.on_line = [&](std::string_view line) { lines.emplace_back(line); };
  const auto result = run_subprocess(options);
  EXPECT_EQ(result.kind, SubprocessResult::Kind::kExited);
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(lines, (std::vector<std::string>{"got hello", "env 42"}));
  EXPECT_EQ(result.last_line, "env 42");
  EXPECT_EQ(result.errors, "oops\n");
}

// What systemd gives the service (its notify socket, socket activation, credentials) does
// not reach the programs it runs; the rest of the environment does.
TEST(Subprocess, KeepsTheServiceManagersVariablesToItself) {
  ::setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
  ::setenv("CREDENTIALS_DIRECTORY", "/run/credentials/stargated.service", 1);
  ::setenv("LISTEN_FDS", "1", 1);
  ::setenv("STARGATE_KEPT", "yes", 1);
  auto options = shell("env");
  std::vector<std::string> lines;
  options.on_line = [&](std::string_view line) { lines.emplace_back(line); };
  run_subprocess(options);
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("CREDENTIALS_DIRECTORY");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("STARGATE_KEPT");
  EXPECT_NE(std::find(lines.begin(), lines.end(), "STARGATE_KEPT=yes"), lines.end());
  for (const auto& line : lines) {
    EXPECT_NE(line.rfind("NOTIFY_SOCKET=", 0), 0u) << line;
    EXPECT_NE(line.rfind("CREDENTIALS_DIRECTORY=", 0), 0u) << line;
    EXPECT_NE(line.rfind("LISTEN_FDS=", 0), 0u) << line;
  }
}

TEST(Subprocess, ExitCodesAndSignals) {
  EXPECT_EQ(run_subprocess(shell("exit 7")).exit_code, 7);
  const auto killed = run_subprocess(shell("kill -KILL $$"));
  EXPECT_EQ(killed.kind, SubprocessResult::Kind::kSignaled);
  EXPECT_EQ(killed.signal, 9);
  SubprocessOptions missing;
  missing.argv = {"/nonexistent/program"};
  const auto failed = run_subprocess(missing);
  EXPECT_EQ(failed.kind, SubprocessResult::Kind::kSpawnFailed);
  EXPECT_NE(failed.error.find("No such file"), std::string::npos);
}

TEST(Subprocess, TimeLimitHoldsEvenWhenOutputIsClosed) {
  auto options = shell("exec >/dev/null 2>&1; trap '' TERM; sleep 30");
  options.timeout = 300ms;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(run_subprocess(options).kind, SubprocessResult::Kind::kTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST(Subprocess, StopsOnRequestAndOnTooMuchOutput) {
  auto stopped = shell("sleep 30");
  stopped.keep_going = [] { return false; };
  EXPECT_EQ(run_subprocess(stopped).kind, SubprocessResult::Kind::kStopped);
  auto chatty = shell("yes");
  chatty.max_output_bytes = 10000;
  EXPECT_EQ(run_subprocess(chatty).kind, SubprocessResult::Kind::kTooMuchOutput);
  auto noisy = shell("head -c 100000 /dev/zero >&2");
  noisy.max_error_bytes = 1000;
  EXPECT_EQ(run_subprocess(noisy).errors.size(), 1000u);
}

TEST(Subprocess, InheritsNoDescriptorBeyondTheStandardThree) {
  const int leaked = ::open("/dev/null", O_RDONLY);  // deliberately not close-on-exec
  ASSERT_GE(leaked, 3);
  const auto result = run_subprocess(shell("ls /proc/self/fd | wc -l"));
  ::close(leaked);
  // 0, 1, 2 and the descriptor ls opens to read the directory.
  EXPECT_EQ(result.last_line, "4");
}

}  // namespace
}  // namespace stargate
