// The conventions every program keeps (INTERFACES.md): --help, --version, exit 2 with a
// one-line reason on a usage error, a clean exit on SIGTERM, and configuration errors that
// name the file, line and key.
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

TEST(Programs, HelpVersionAndUsageErrors) {
  for (const char* program : {"stargate", "stargated", "stargate-server"}) {
    auto help = run({binary(program), "--help"});
    EXPECT_EQ(help.exit_code, 0) << program;
    EXPECT_NE(help.out.find("Exit status"), std::string::npos) << program << help.out;
    auto version = run({binary(program), "--version"});
    EXPECT_EQ(version.exit_code, 0) << program;
    EXPECT_EQ(version.out, "0.1.0\n") << program;
  }
  const std::vector<std::vector<std::string>> misuses = {
      {binary("stargate"), "status", "x", "--no-such-flag"},
      {binary("stargated"), "--no-such-flag"},
      {binary("stargate-server"), "serve", "--no-such-flag"},
  };
  for (const auto& argv : misuses) {
    auto usage = run(argv);
    EXPECT_EQ(usage.exit_code, 2) << argv[0];
    EXPECT_NE(usage.err.find("--no-such-flag"), std::string::npos) << usage.err;
  }
  EXPECT_EQ(run({binary("stargate")}).exit_code, 2);  // a command is required
}

TEST(Programs, StopCleanlyOnSigterm) {
  Stack stack;
  auto submit =
      stack.cli({"submit", "order", "--data",
                 "{\"orderId\":\"O\",\"items\":[{\"sku\":\"A\",\"quantity\":1}]}", "--wait"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  EXPECT_EQ(stack.stop_daemon(SIGTERM), 0) << stack.daemon_log();
  EXPECT_EQ(stack.stop_server(SIGTERM), 0) << stack.server_log();
  // Exit status 0 also means the sanitizers found no leak at exit.
  EXPECT_NE(stack.daemon_log().find("stopped"), std::string::npos) << stack.daemon_log();
  EXPECT_NE(stack.server_log().find("stopped"), std::string::npos) << stack.server_log();
}

// A queue file that is not a database (a disk error, a wrong path): the daemon stops with
// a message naming it and leaves it exactly as it was, since it may hold unsent requests.
TEST(Programs, DaemonRefusesACorruptQueueAndLeavesItAlone) {
  StackOptions options;
  options.start_daemon = false;
  Stack stack(options);
  ::mkdir(stack.dir().file("daemon").c_str(), 0700);
  const std::string queue = stack.dir().file("daemon/queue.db");
  const std::string garbage = "SQLite format 3" + std::string(1, '\0') + std::string(8000, '\x5a');
  write_file(queue, garbage);
  write_file(stack.dir().file("stargated.toml"),
             "[gateway]\nurl = \"http://127.0.0.1:" + std::to_string(stack.port()) +
                 "\"\n[credentials]\nclient_id = \"" + stack.client_id() +
                 "\"\nclient_secret_file = \"" + stack.dir().file("client_secret") +
                 "\"\n[queue]\npath = \"" + queue + "\"\n[socket]\npath = \"" + stack.socket() +
                 "\"\n");
  auto daemon = run({binary("stargated"), "--config", stack.dir().file("stargated.toml")});
  EXPECT_EQ(daemon.exit_code, 1);
  EXPECT_NE(daemon.err.find("cannot open the queue " + queue), std::string::npos) << daemon.err;
  EXPECT_EQ(read_file(queue), garbage);
}

TEST(Programs, DaemonConfigErrorsNameFileLineAndKey) {
  TempDir dir;
  write_file(dir.file("bad.toml"),
             "[gateway]\nurl = \"https://gw\"\n[polling]\nfast_interval = 30\n");
  auto check = run({binary("stargated"), "--check-config", "--config", dir.file("bad.toml")});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.err.find(dir.file("bad.toml") + ":4: polling.fast_interval"), std::string::npos)
      << check.err;
  EXPECT_NE(check.err.find("missing required key credentials.client_id"), std::string::npos);
}

// gateway and worker share their work through Redis and MongoDB: on the embedded store they
// refuse to start and say what to use instead. A MongoDB password file that cannot be read
// stops the program before it connects anywhere.
TEST(Programs, GatewayAndWorkerRefuseTheEmbeddedStoreAndUnreadablePasswords) {
  TempDir dir;
  write_file(dir.file("sqlite.toml"), "[server]\nstate_dir = \"" + dir.file("state") + "\"\n");
  for (const char* role : {"gateway", "worker"}) {
    auto refused = run({binary("stargate-server"), role, "--config", dir.file("sqlite.toml")});
    EXPECT_EQ(refused.exit_code, 1) << role << refused.err;
    EXPECT_NE(refused.err.find("needs [store] backend = \"redis+mongo\""), std::string::npos)
        << refused.err;
  }
  write_file(dir.file("mongo.toml"),
             "[server]\nstate_dir = \"" + dir.file("state") +
                 "\"\n[store]\nbackend = \"redis+mongo\"\n[redis]\nurl = "
                 "\"redis://127.0.0.1:1\"\n[mongo]\nuri = \"mongodb://sg@127.0.0.1:1/sg\"\n"
                 "password_file = \"" +
                 dir.file("missing.pw") + "\"\n");
  auto unreadable = run({binary("stargate-server"), "worker", "--config", dir.file("mongo.toml")});
  EXPECT_EQ(unreadable.exit_code, 1) << unreadable.err;
  EXPECT_NE(unreadable.err.find("missing.pw"), std::string::npos) << unreadable.err;
}

// The example configurations shipped in the packages are valid as they are.
TEST(Programs, ExampleConfigurationsAreValid) {
  TempDir dir;
  write_file(dir.file("client_secret"), "s3cret\n", 0400);
  const std::string packaging = std::string(STARGATE_SOURCE_DIR) + "/packaging/";
  auto daemon =
      run({binary("stargated"), "--check-config", "--config", packaging + "stargated.toml.example"},
          {"CREDENTIALS_DIRECTORY=" + dir.path()});
  EXPECT_EQ(daemon.exit_code, 0) << daemon.err;
  auto server = run(
      {binary("stargate-server"), "serve", "--config", packaging + "stargate-server.toml.example",
       "--listen", "127.0.0.1:0", "--port-file", dir.file("port")},
      {"STATE_DIRECTORY=" + dir.path()}, "", std::chrono::seconds(2));
  // It ran (until the time limit stopped it) rather than refusing its configuration.
  EXPECT_NE(server.err.find("listening on http://127.0.0.1:"), std::string::npos) << server.err;
}

TEST(Programs, DaemonRefusesASecretOthersCanRead) {
  TempDir dir;
  write_file(dir.file("secret"), "s3cret\n", 0644);
  write_file(dir.file("d.toml"),
             "[gateway]\nurl = \"http://127.0.0.1:1\"\n[credentials]\n"
             "client_id = \"c\"\nclient_secret_file = \"" +
                 dir.file("secret") + "\"\n");
  auto check = run({binary("stargated"), "--check-config", "--config", dir.file("d.toml")});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.err.find("chmod 600"), std::string::npos) << check.err;
  EXPECT_EQ(check.err.find("s3cret"), std::string::npos);
}

}  // namespace
}  // namespace stargate::test
