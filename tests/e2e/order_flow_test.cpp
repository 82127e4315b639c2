// End to end, with the real binaries: stargate -> stargated -> stargate-server -> engine and
// back, as the demo does it, plus the CLI's exit codes for the common failures.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "shared/ids.hpp"
#include "tests/e2e/orders.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;

TEST(OrderFlow, SubmitWaitReturnsTheCompletedResult) {
  Stack stack;
  auto run = stack.cli({"--json", "submit", "order", "--data", kDemoOrder, "--wait"});
  ASSERT_EQ(run.exit_code, 0) << run.err << "\n" << stack.daemon_log() << stack.server_log();
  const auto record = json::parse(run.out);
  EXPECT_EQ(record["state"], "completed");
  EXPECT_EQ(record["processType"], "order");
  EXPECT_EQ(record["progress"], 100);
  EXPECT_TRUE(is_uuid(record["clientProcessId"].get<std::string>()));
  EXPECT_TRUE(is_process_id(record["processId"].get<std::string>()));
  EXPECT_EQ(record["result"]["orderId"], "ORD-12345");
  EXPECT_EQ(record["result"]["status"], "confirmed");
  EXPECT_EQ(record["result"]["trackingNumber"].get<std::string>().rfind("TRACK-", 0), 0u);
  EXPECT_TRUE(record["result"]["estimatedDelivery"].is_string());
  EXPECT_TRUE(record["completedAt"].is_string());
  EXPECT_EQ(run.err, "");  // no TTY: nothing but the answer
  // The clientProcessId travels as the correlation id: one request, traceable end to end.
  const std::string trace = "[" + record["clientProcessId"].get<std::string>() + "]";
  const auto server_log = stack.server_log();
  EXPECT_NE(server_log.find("POST /api/stargate/processes 202"), std::string::npos);
  EXPECT_NE(server_log.find("order started (tenant acme, attempt 1) " + trace), std::string::npos)
      << server_log;

  // The same record through status, in human form.
  auto status = stack.cli({"status", record["clientProcessId"]});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_NE(status.out.find("completed"), std::string::npos);
  EXPECT_NE(status.out.find("trackingNumber"), std::string::npos);
  EXPECT_EQ(status.out.find("\033["), std::string::npos);  // no colour off a terminal
}

TEST(OrderFlow, SubmitPrintsTheIdAndWaitFollowsIt) {
  Stack stack;
  auto submit = stack.cli({"submit", "order", "--data-file", "-", "--id", "order-42"}, kDemoOrder);
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  EXPECT_EQ(submit.out, "order-42\n");
  auto wait = stack.cli({"--json", "wait", "order-42", "--timeout", "60s"});
  ASSERT_EQ(wait.exit_code, 0) << wait.err;
  EXPECT_EQ(json::parse(wait.out)["state"], "completed");
  // Submitting a known id again reports the existing record and queues nothing.
  auto again = stack.cli({"submit", "order", "--data", kDemoOrder, "--id", "order-42"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.err.find("already known"), std::string::npos);
}

TEST(OrderFlow, AFailedProcessExitsWithFour) {
  StackOptions options;
  options.server_extra = "[order.stock]\nSKU-001 = 3\n";
  Stack stack(options);
  auto run = stack.cli({"--json", "submit", "order", "--data", kDemoOrder, "--wait"});
  EXPECT_EQ(run.exit_code, 4) << run.err;
  const auto record = json::parse(run.out);
  EXPECT_EQ(record["state"], "failed");
  EXPECT_EQ(record["error"]["code"], "INVENTORY_INSUFFICIENT");
  EXPECT_EQ(record["error"]["details"]["available"], 3);
  EXPECT_EQ(record["retryable"], true);
}

// Confirmed orders take their units for good, across a restart of the server; the operator
// sees what is left with `stargate-server stock`, and restocks by raising the number.
TEST(OrderFlow, ConfirmedOrdersUseUpTheStock) {
  StackOptions options;
  options.server_extra = "[order.stock]\nSKU-001 = 25\n";
  Stack stack(options);
  for (int i = 0; i < 2; ++i) {
    auto run = stack.cli({"submit", "order", "--data", kDemoOrder, "--wait"});
    ASSERT_EQ(run.exit_code, 0) << run.err << stack.server_log();
  }
  auto stock = [&] {
    auto listed = run({binary("stargate-server"), "stock", "--json", "--config",
                       stack.dir().file("server.toml")});
    EXPECT_EQ(listed.exit_code, 0) << listed.err;
    return json::parse(listed.out);
  };
  EXPECT_EQ(stock(), json::parse(R"({"defaultStock":1000,"skus":[
                {"sku":"SKU-001","stock":25,"reserved":20,"available":5}]})"));
  stack.stop_server();
  stack.start_server();
  auto short_run = stack.cli({"--json", "submit", "order", "--data", kDemoOrder, "--wait"});
  EXPECT_EQ(short_run.exit_code, 4) << short_run.err;
  const auto failed = json::parse(short_run.out);
  EXPECT_EQ(failed["error"]["code"], "INVENTORY_INSUFFICIENT");
  EXPECT_EQ(failed["error"]["details"],
            json::parse(R"({"sku":"SKU-001","requested":10,"available":5})"));
  auto text =
      run({binary("stargate-server"), "stock", "--config", stack.dir().file("server.toml")});
  EXPECT_NE(text.out.find("SKU-001"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("20"), std::string::npos) << text.out;

  // Restocked: the same process, retried, now goes through.
  auto config = read_file(stack.dir().file("server.toml"));
  config.replace(config.find("SKU-001 = 25"), 12, "SKU-001 = 40");
  write_file(stack.dir().file("server.toml"), config);
  stack.stop_server();
  stack.start_server();
  auto retried = stack.cli({"retry", failed["clientProcessId"]});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  auto done = stack.cli({"--json", "wait", failed["clientProcessId"], "--timeout", "60s"});
  EXPECT_EQ(done.exit_code, 0) << done.err << stack.daemon_log();
  EXPECT_EQ(stock()["skus"][0]["available"], 10);
}

TEST(OrderFlow, ExitCodesForCommonMistakes) {
  Stack stack;
  auto unknown = stack.cli({"status", "no-such-id"});
  EXPECT_EQ(unknown.exit_code, 6);
  EXPECT_NE(unknown.err.find("stargate list"), std::string::npos);
  auto malformed = stack.cli({"submit", "order", "--data", "{\"orderId\": }"});
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_NE(malformed.err.find("line 1, column"), std::string::npos) << malformed.err;
  EXPECT_EQ(stack.cli({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(stack.cli({"wait", "x", "--timeout", "soon"}).exit_code, 2);
  // Waiting on a process that cannot finish in time: the gateway is down.
  stack.stop_server();
  auto queued = stack.cli({"submit", "order", "--data", kDemoOrder, "--wait", "--timeout", "1s"});
  EXPECT_EQ(queued.exit_code, 5) << queued.err;
  // No daemon behind the socket.
  auto down =
      run({binary("stargate"), "--socket", stack.dir().file("nowhere.sock"), "status", "x"});
  EXPECT_EQ(down.exit_code, 3);
  EXPECT_NE(down.err.find("systemctl status stargated"), std::string::npos) << down.err;
}

TEST(OrderFlow, OfflineRequestsAreSentWhenTheGatewayReturns) {
  Stack stack;
  stack.stop_server();
  auto submit = stack.cli({"submit", "order", "--data", kDemoOrder, "--id", "offline-1"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  auto status = stack.cli({"--json", "status", "offline-1"});
  EXPECT_EQ(json::parse(status.out)["state"], "queued");
  stack.start_server();
  auto wait = stack.cli({"--json", "wait", "offline-1", "--timeout", "60s"});
  ASSERT_EQ(wait.exit_code, 0) << wait.err << stack.daemon_log();
  EXPECT_EQ(json::parse(wait.out)["state"], "completed");
  EXPECT_GE(json::parse(wait.out)["attempts"].get<int>(), 2);
}

}  // namespace
}  // namespace stargate::test
