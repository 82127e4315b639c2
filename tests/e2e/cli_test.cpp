// The stargate CLI as operators and scripts meet it: the real binary against the real daemon
// and server. Every exit code, every --json document, terminals and their absence, cron,
// and the errors a user must be able to act on.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "shared/ids.hpp"
#include "tests/e2e/orders.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

StackOptions short_steps() {
  StackOptions options;
  options.step_duration = "50ms";
  options.server_extra = "[order.stock]\nSKU-LOW = 1\n";
  return options;
}

class Cli : public ::testing::Test {
 protected:
  Stack stack_{short_steps()};
  // A completed order to look at.
  std::string completed() {
    auto run = stack_.cli({"--json", "submit", "order", "--data", kDemoOrder, "--wait"});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return json::parse(run.out)["clientProcessId"];
  }
};

TEST_F(Cli, JsonDocumentsOfEveryCommand) {
  // submit (without --wait): the queued record.
  auto submitted = stack_.cli({"--json", "submit", "order", "--data", kDemoOrder, "--id", "j-1"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  auto record = json::parse(submitted.out);
  EXPECT_EQ(record["clientProcessId"], "j-1");
  EXPECT_EQ(record["processType"], "order");
  EXPECT_EQ(record["state"], "queued");
  for (const char* field :
       {"processId", "progress", "currentStep", "result", "error", "retryable", "attempts",
        "lastError", "createdAt", "submittedAt", "updatedAt", "completedAt"}) {
    EXPECT_TRUE(record.contains(field)) << field;
  }
  // wait: the final record.
  auto waited = json::parse(stack_.cli({"--json", "wait", "j-1", "--timeout", "60s"}).out);
  EXPECT_EQ(waited["state"], "completed");
  EXPECT_TRUE(is_process_id(waited["processId"].get<std::string>()));
  // status: the same record.
  auto status = json::parse(stack_.cli({"--json", "status", "j-1"}).out);
  EXPECT_EQ(status["processId"], waited["processId"]);
  EXPECT_EQ(status["progress"], 100);
  // result: the result alone.
  auto result = stack_.cli({"result", "j-1"});
  ASSERT_EQ(result.exit_code, 0);
  EXPECT_EQ(json::parse(result.out)["orderId"], "ORD-12345");
  EXPECT_EQ(json::parse(result.out)["trackingNumber"].get<std::string>().rfind("TRACK-", 0), 0u);
  // list: an array, newest first, filterable.
  ASSERT_EQ(stack_.cli({"submit", "order", "--data", kDemoOrder, "--id", "j-2"}).exit_code, 0);
  auto listed = json::parse(stack_.cli({"--json", "list"}).out);
  ASSERT_TRUE(listed.is_array());
  EXPECT_EQ(listed[0]["clientProcessId"], "j-2");
  auto only = json::parse(stack_.cli({"--json", "list", "--state", "completed"}).out);
  for (const auto& r : only)
    EXPECT_EQ(r["state"], "completed");
  // health: the daemon's view.
  auto health = json::parse(stack_.cli({"--json", "health"}).out);
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["version"], "0.1.0");
  EXPECT_EQ(health["processTypes"], json({"order", "shipping"}));
  EXPECT_TRUE(health["queue"].contains("queued"));
  // queue and queue flush.
  auto queued = json::parse(stack_.cli({"--json", "queue"}).out);
  EXPECT_TRUE(queued.is_array());
  EXPECT_EQ(json::parse(stack_.cli({"--json", "queue", "flush"}).out)["flushing"], true);
}

TEST_F(Cli, QueueRetryAndCancelWhileTheGatewayIsAway) {
  stack_.stop_server();
  ASSERT_EQ(stack_.cli({"submit", "order", "--data", kDemoOrder, "--id", "q-1"}).exit_code, 0);
  ASSERT_EQ(stack_.cli({"submit", "order", "--data", kDemoOrder, "--id", "q-2"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return json::parse(stack_.cli({"--json", "status", "q-1"}).out)["attempts"] >= 1;
      },
      10s));
  auto queued = json::parse(stack_.cli({"--json", "queue"}).out);
  ASSERT_EQ(queued.size(), 2u);
  EXPECT_EQ(queued[0]["clientProcessId"], "q-1");  // oldest first
  EXPECT_GE(queued[0]["attempts"].get<int>(), 1);
  EXPECT_TRUE(queued[0]["lastError"].is_string());
  EXPECT_TRUE(queued[0]["ageSeconds"].is_number());
  auto human = stack_.cli({"queue"});
  EXPECT_NE(human.out.find("LAST ERROR"), std::string::npos);
  EXPECT_NE(human.err.find("2 waiting to be sent"), std::string::npos);
  // q-2 has not been sent: it can be withdrawn.
  auto cancelled = stack_.cli({"--json", "cancel", "q-2"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(json::parse(cancelled.out)["state"], "cancelled");
  EXPECT_EQ(stack_.cli({"cancel", "q-2"}).exit_code, 1);  // once cancelled, a conflict
  // Waiting on a cancelled request ends at once with 4.
  EXPECT_EQ(stack_.cli({"wait", "q-2"}).exit_code, 4);
  // Retry of something that is not a failure: 1, with the reason.
  auto refused = stack_.cli({"retry", "q-1"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("not failed"), std::string::npos) << refused.err;
}

TEST_F(Cli, RetryOfARetryableFailure) {
  auto failed = stack_.cli({"--json", "submit", "order", "--id", "low", "--wait", "--data",
                            R"({"orderId":"O","items":[{"sku":"SKU-LOW","quantity":5}]})"});
  ASSERT_EQ(failed.exit_code, 4);
  EXPECT_EQ(json::parse(failed.out)["retryable"], true);
  auto no_result = stack_.cli({"result", "low"});
  EXPECT_EQ(no_result.exit_code, 4);
  EXPECT_NE(no_result.err.find("INVENTORY_INSUFFICIENT"), std::string::npos);
  auto retried = stack_.cli({"--json", "retry", "low"});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(json::parse(retried.out)["state"], "accepted");
  EXPECT_EQ(stack_.cli({"wait", "low", "--timeout", "60s"}).exit_code, 4);  // short again
}

TEST_F(Cli, EveryExitCodeForReal) {
  const std::string done = completed();
  EXPECT_EQ(stack_.cli({"status", done}).exit_code, 0);
  EXPECT_EQ(stack_.cli({"retry", done}).exit_code, 1);  // completed: not retryable
  EXPECT_EQ(stack_.cli({"submit", "order", "--data", "{oops"}).exit_code, 2);
  EXPECT_EQ(stack_.cli({"list", "--state", "sleeping"}).exit_code, 2);
  EXPECT_EQ(stack_.cli({"status", "../etc/passwd"}).exit_code, 2);
  auto down = run({binary("stargate"), "--socket", stack_.dir().file("none.sock"), "list"});
  EXPECT_EQ(down.exit_code, 3);
  auto failed = stack_.cli({"submit", "order", "--wait", "--data",
                            R"({"orderId":"O","items":[{"sku":"SKU-LOW","quantity":5}]})"});
  EXPECT_EQ(failed.exit_code, 4);
  stack_.stop_server();
  EXPECT_EQ(
      stack_.cli({"submit", "order", "--data", kDemoOrder, "--wait", "--timeout", "1s"}).exit_code,
      5);
  EXPECT_EQ(stack_.cli({"result", "nope"}).exit_code, 6);
  EXPECT_EQ(stack_.cli({"wait", "nope"}).exit_code, 6);
  EXPECT_EQ(stack_.cli({"cancel", "nope"}).exit_code, 6);
}

TEST_F(Cli, UnknownProcessTypesAreRefusedWithTheKnownOnes) {
  completed();  // the daemon has a token, so it knows what this client may submit
  auto unknown = stack_.cli({"submit", "teleport", "--data", "{}"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("Unknown process type 'teleport': this client may submit order, "
                             "shipping"),
            std::string::npos)
      << unknown.err;
}

TEST_F(Cli, ColourAndProgressOnlyOnATerminal) {
  const std::string done = completed();
  const std::string cli = binary("stargate");
  auto tty = run_in_terminal({cli, "--socket", stack_.socket(), "status", done});
  EXPECT_EQ(tty.exit_code, 0);
  EXPECT_NE(tty.out.find("\033[32mcompleted\033[0m"), std::string::npos) << tty.out;
  auto no_color =
      run_in_terminal({cli, "--socket", stack_.socket(), "status", done}, {"NO_COLOR=1"});
  EXPECT_EQ(no_color.out.find("\033["), std::string::npos) << no_color.out;
  auto dumb = run_in_terminal({cli, "--socket", stack_.socket(), "status", done}, {"TERM=dumb"});
  EXPECT_EQ(dumb.out.find("\033["), std::string::npos);
  auto piped = stack_.cli({"status", done});
  EXPECT_EQ(piped.out.find("\033["), std::string::npos);
  EXPECT_EQ(piped.err.find("\033["), std::string::npos);
  // On a terminal, waiting shows a progress line, cleared before the answer.
  stack_.stop_server();
  auto waiting = run_in_terminal({cli, "--socket", stack_.socket(), "submit", "order", "--data",
                                  kDemoOrder, "--wait", "--timeout", "2s"});
  EXPECT_EQ(waiting.exit_code, 5);
  EXPECT_NE(waiting.out.find("  queued"), std::string::npos) << waiting.out;  // the progress line
  EXPECT_NE(waiting.out.find("\r\033[K"), std::string::npos) << waiting.out;  // and its clearing
  EXPECT_NE(waiting.out.find("timed out waiting"), std::string::npos);
}

TEST_F(Cli, FromCronWithNoEnvironmentAndNoTerminal) {
  auto cron =
      run({"/usr/bin/env", "-i", binary("stargate"), "--socket", stack_.socket(), "submit", "order",
           "--data", kDemoOrder, "--id", "cron-2026-11-22", "--wait", "--timeout", "60s"});
  ASSERT_EQ(cron.exit_code, 0) << cron.err;
  EXPECT_EQ(cron.err, "");
  EXPECT_NE(cron.out.find("trackingNumber"), std::string::npos);
  // The same line from cron tomorrow morning, rerun by accident today: nothing new queued.
  auto again = run({"/usr/bin/env", "-i", binary("stargate"), "--socket", stack_.socket(), "submit",
                    "order", "--data", kDemoOrder, "--id", "cron-2026-11-22"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.err.find("already known"), std::string::npos);
}

TEST_F(Cli, DataFromStdinAndMalformedDataWithItsPosition) {
  auto piped = stack_.cli({"--json", "submit", "order", "--data-file", "-"}, kDemoOrder);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  auto bad = stack_.cli({"submit", "order", "--data-file", "-"}, "{\n  \"orderId\": \"O\",\n  }\n");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("standard input: line 3, column 3"), std::string::npos) << bad.err;
  EXPECT_EQ(stack_.cli({"submit", "order", "--data", "{}", "--data-file", "x"}).exit_code, 2);
}

TEST_F(Cli, ErrorsSayWhatToDo) {
  auto down = run({binary("stargate"), "--socket", stack_.dir().file("none.sock"), "health"});
  EXPECT_NE(down.err.find(stack_.dir().file("none.sock")), std::string::npos);
  EXPECT_NE(down.err.find("systemctl status stargated"), std::string::npos);
  // Another user, not in the socket's group: permission denied, and which group to join.
  auto denied = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                     binary("stargate"), "--socket", stack_.socket(), "health"});
  EXPECT_EQ(denied.exit_code, 3);
  EXPECT_NE(denied.err.find("permission denied"), std::string::npos) << denied.err;
  EXPECT_NE(denied.err.find("stargate"), std::string::npos);
  auto unknown = stack_.cli({"status", "no-such-order"});
  EXPECT_NE(unknown.err.find("stargate list"), std::string::npos);
}

TEST(CliCompletion, SourcesAndCompletesCommands) {
  const std::string script = std::string(STARGATE_SOURCE_DIR) + "/packaging/completions/stargate";
  auto completed = run({"/bin/bash", "-c",
                        "source " + script +
                            " && COMP_WORDS=(stargate su) && COMP_CWORD=1 && _stargate && "
                            "echo \"${COMPREPLY[@]}\""});
  EXPECT_EQ(completed.exit_code, 0) << completed.err;
  EXPECT_EQ(completed.out, "submit\n");
  EXPECT_EQ(completed.err, "");
  auto option = run({"/bin/bash", "-c",
                     "source " + script +
                         " && COMP_WORDS=(stargate list --st) && COMP_CWORD=2 && _stargate && "
                         "echo \"${COMPREPLY[@]}\""});
  EXPECT_EQ(option.out, "--state\n");
}

}  // namespace
}  // namespace stargate::test
