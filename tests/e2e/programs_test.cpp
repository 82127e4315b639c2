// The conventions every program keeps (INTERFACES.md): --help, --version, exit 2 with a
// one-line reason on a usage error, a clean exit on SIGTERM, and configuration errors that
// name the file, line and key.
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

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

// A MongoDB that wants a password: the admin commands (and so every program) log in with
// the one in [mongo] password_file or the mongodb-password credential, characters that a
// URI would misread included; a wrong one, one without a user name in the URI, or a user
// without a password (libmongoc 1.23 crashed on it) is refused with a message that says so.
TEST(Programs, MongoPasswordsComeFromAFileOrACredential) {
  TempDir dir;
  const std::string password = "p@ss:w/rd%?#";
  MongoServer mongo(dir.file("mongo"), "stargate-app", password);
  ASSERT_TRUE(mongo.ok()) << mongo.error();
  if (!mongo.own_process()) GTEST_SKIP() << "needs a FerretDB the test starts with a user";
  RedisServer redis(dir.file("redis"));
  ASSERT_TRUE(redis.ok()) << redis.error();
  const std::string with_user = "mongodb://stargate-app@127.0.0.1:" +
                                mongo.uri().substr(std::string("mongodb://127.0.0.1:").size());
  const auto config = [&](const std::string& name, const std::string& uri,
                          const std::string& password_file) {
    std::string text = "[server]\nstate_dir = \"" + dir.file("state") +
                       "\"\n[store]\nbackend = \"redis+mongo\"\n[redis]\nurl = \"" + redis.url() +
                       "\"\n[mongo]\nuri = \"" + uri + "\"\n";
    if (!password_file.empty()) text += "password_file = \"" + password_file + "\"\n";
    write_file(dir.file(name), text);
    return dir.file(name);
  };
  write_file(dir.file("right.pw"), password + "\n", 0600);
  write_file(dir.file("wrong.pw"), "not-it\n", 0600);
  const std::vector<std::string> add = {"client",          "add",  "--tenant", "acme",
                                        "--process-types", "order"};
  int secrets = 0;
  auto run_admin = [&](const std::string& cfg, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {binary("stargate-server")};
    argv.insert(argv.end(), add.begin(), add.end());
    argv.insert(argv.end(),
                {"--config", cfg, "--secret-file", dir.file("secret" + std::to_string(++secrets))});
    return run(argv, env);
  };

  auto from_file = run_admin(config("file.toml", with_user, dir.file("right.pw")));
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
  std::filesystem::create_directories(dir.file("credentials"));
  write_file(dir.file("credentials/mongodb-password"), password, 0600);
  auto from_credential = run_admin(config("credential.toml", with_user, ""),
                                   {"CREDENTIALS_DIRECTORY=" + dir.file("credentials")});
  EXPECT_EQ(from_credential.exit_code, 0) << from_credential.err;
  auto listed = run({binary("stargate-server"), "client", "list", "--config",
                     config("list.toml", with_user, dir.file("right.pw"))});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(std::count(listed.out.begin(), listed.out.end(), '\n'), 2) << listed.out;

  auto wrong = run_admin(config("wrong.toml", with_user, dir.file("wrong.pw")));
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("mongodb"), std::string::npos) << wrong.err;
  EXPECT_NE(wrong.err.find("uthentication"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("not-it"), std::string::npos) << "the password is never printed";
  auto no_user = run_admin(config("nouser.toml", mongo.uri(), dir.file("right.pw")));
  EXPECT_EQ(no_user.exit_code, 1);
  EXPECT_NE(no_user.err.find("needs a user name"), std::string::npos) << no_user.err;
  auto no_password = run_admin(config("nopassword.toml", with_user, ""));
  EXPECT_EQ(no_password.exit_code, 1);
  EXPECT_NE(no_password.err.find("names a user but no password"), std::string::npos)
      << no_password.err;
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
