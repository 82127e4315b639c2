// Tests of server/engine/handlers/exec_handler.cpp with real programs (small shell scripts).
#include "server/engine/handlers/exec_handler.hpp"

#include <gtest/gtest.h>

#include "tests/support/process.hpp"

namespace stargate::server {
namespace {

using namespace std::chrono_literals;

class ProgressSeen final : public HandlerContext {
 public:
  void progress(int percent, const std::string& step) override {
    progress_seen.emplace_back(percent, step);
  }
  bool pause(Duration) override { return !stop; }
  std::vector<std::pair<int, std::string>> progress_seen;
  bool stop = false;
};

class ExecHandlerTest : public ::testing::Test {
 protected:
  // Writes `body` as an executable shell script and returns a handler running it.
  ExecHandler script(const std::string& body, Duration timeout = 30s) {
    const auto path = dir_.file("handler-" + std::to_string(++count_) + ".sh");
    test::write_file(path, "#!/bin/sh\n" + body, 0755);
    return ExecHandler({{path}, timeout, 1s, 1 << 20});
  }
  HandlerOutcome run(ExecHandler handler) {
    return handler.run({"PROC-20260114-00001", "acme", "invoice", {{"amount", 42}}}, context_);
  }
  test::TempDir dir_;
  ProgressSeen context_;
  int count_ = 0;
};

TEST_F(ExecHandlerTest, ReadsTheRequestReportsProgressAndReturnsTheLastLine) {
  auto outcome = run(script(R"(
request=$(cat)
echo '{"progress": 30, "currentStep": "render"}'
echo '{"progress": 80, "currentStep": "send"}'
printf '{"request": %s, "process": "%s", "tenant": "%s"}\n' "$request" "$STARGATE_PROCESS_ID" "$STARGATE_TENANT"
)"));
  ASSERT_TRUE(outcome.ok) << outcome.error.message;
  EXPECT_EQ(outcome.result["request"]["data"]["amount"], 42);
  EXPECT_EQ(outcome.result["request"]["processType"], "invoice");
  EXPECT_EQ(outcome.result["process"], "PROC-20260114-00001");
  EXPECT_EQ(outcome.result["tenant"], "acme");
  EXPECT_EQ(context_.progress_seen,
            (std::vector<std::pair<int, std::string>>{{30, "render"}, {80, "send"}}));
}

TEST_F(ExecHandlerTest, NonZeroExitFailsWithStderr) {
  auto outcome = run(script("cat >/dev/null\necho 'customer 42 unknown' >&2\nexit 3\n"));
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error.code, "EXEC_FAILED");
  EXPECT_EQ(outcome.error.message, "customer 42 unknown");
  EXPECT_EQ(outcome.error.details["exitCode"], 3);
  EXPECT_FALSE(outcome.retryable);
}

TEST_F(ExecHandlerTest, ExitSeventyFiveIsRetryableAndLongStderrIsShortened) {
  auto outcome = run(script("head -c 5000 /dev/zero | tr '\\\\0' x >&2\nexit 75\n"));
  ASSERT_FALSE(outcome.ok);
  EXPECT_TRUE(outcome.retryable);
  EXPECT_LE(outcome.error.message.size(), 500u);
  EXPECT_EQ(outcome.error.message.substr(outcome.error.message.size() - 3), "...");
}

TEST_F(ExecHandlerTest, ProgramsOverTheirTimeLimitAreKilled) {
  const auto started = std::chrono::steady_clock::now();
  // Ignores SIGTERM, so SIGKILL must follow.
  auto outcome = run(script("trap '' TERM\nsleep 30\n", 300ms));
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error.code, "TIMEOUT");
  EXPECT_TRUE(outcome.retryable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s);
}

TEST_F(ExecHandlerTest, GarbageOutputFails) {
  auto outcome = run(script("cat >/dev/null\necho 'all done!'\n"));
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error.code, "OUTPUT_INVALID");
  auto silent = run(script("cat >/dev/null\n"));
  EXPECT_EQ(silent.error.code, "OUTPUT_INVALID");
}

TEST_F(ExecHandlerTest, TooMuchOutputFails) {
  auto outcome = run(script("cat >/dev/null\nwhile :; do echo '{\"progress\": 1}'; done\n"));
  ASSERT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error.code, "OUTPUT_TOO_LARGE");
}

TEST_F(ExecHandlerTest, AProgramThatIgnoresItsInputIsFine) {
  auto outcome = run(script("echo '{\"ok\": true}'\n"));
  ASSERT_TRUE(outcome.ok) << outcome.error.message;
  EXPECT_EQ(outcome.result["ok"], true);
}

TEST_F(ExecHandlerTest, MissingProgramFailsClearly) {
  ExecHandler handler({{dir_.file("does-not-exist")}, 5s, 1s, 1024});
  auto outcome = run(std::move(handler));
  ASSERT_FALSE(outcome.ok);
  EXPECT_NE(outcome.error.message.find("No such file"), std::string::npos) << outcome.error.message;
}

TEST_F(ExecHandlerTest, StoppingTheServerStopsTheProgram) {
  context_.stop = true;
  auto outcome = run(script("sleep 30\n"));
  EXPECT_TRUE(outcome.interrupted);
}

TEST(ExecOutput, ProgressAndResultLines) {
  auto progress = parse_progress_line(R"({"progress":45.7,"currentStep":"reserve"})", 1 << 20);
  ASSERT_TRUE(progress);
  EXPECT_EQ(progress->percent, 45);
  EXPECT_EQ(progress->step, "reserve");
  EXPECT_EQ(parse_progress_line(R"({"progress":1e300})", 1 << 20)->percent, 100);
  EXPECT_EQ(parse_progress_line(R"({"progress":-5})", 1 << 20)->percent, 0);
  // A step that is not a string is left out (it used to throw out of the engine).
  EXPECT_EQ(parse_progress_line(R"({"progress":5,"currentStep":7})", 1 << 20)->step, "");
  EXPECT_EQ(parse_progress_line(
                R"({"progress":5,"currentStep":")" + std::string(300, 'x') + R"("})", 1 << 20)
                ->step.size(),
            kMaxStepBytes);
  EXPECT_FALSE(parse_progress_line("not json", 1 << 20));
  EXPECT_FALSE(parse_progress_line(R"({"progress":"x"})", 1 << 20));
  EXPECT_TRUE(parse_result_line(R"({"ok":true})", 1 << 20));
  EXPECT_EQ(parse_result_line("[1]", 1 << 20).error(), "");
  EXPECT_EQ(parse_result_line("", 1 << 20).error(), "");
  EXPECT_NE(parse_result_line("{", 1 << 20).error().find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace stargate::server
