// stargate-server as a black box: the real binary over real HTTP on loopback, and its admin
// commands against its real database.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <map>
#include <sstream>

#include "shared/sqlite.hpp"
#include "tests/e2e/orders.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;

TEST(Server, AuditVerifyCatchesARecordEditedWithSqlite3) {
  Stack stack;
  ASSERT_EQ(stack.cli({"submit", "order", "--data", kOrder, "--wait"}).exit_code, 0);
  auto intact = stack.admin({"audit", "verify"});
  ASSERT_EQ(intact.exit_code, 0) << intact.err << intact.out;
  EXPECT_NE(intact.out.find("audit trail intact"), std::string::npos);

  auto exported = stack.admin({"audit", "export", "--since", "1h"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::istringstream lines(exported.out);
  int states = 0, admin = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto record = json::parse(line);
    EXPECT_EQ(record["hash"].get<std::string>().size(), 64u);
    if (record["kind"] == "state") ++states;
    if (record["kind"] == "admin") ++admin;
  }
  EXPECT_EQ(states, 3);  // accepted, processing, completed
  EXPECT_EQ(admin, 1);   // client add
  EXPECT_EQ(exported.out.find("client_secret"), std::string::npos);

  const auto db = stack.dir().file("server/stargate-server.db");
  auto edit = run({"/usr/bin/sqlite3", db,
                   "UPDATE audit SET record = replace(record, 'completed', 'failed') "
                   "WHERE record LIKE '%\"to\":\"completed\"%'"});
  ASSERT_EQ(edit.exit_code, 0) << edit.err;
  auto broken = stack.admin({"audit", "verify"});
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_NE(broken.out.find("BROKEN"), std::string::npos) << broken.out;
  EXPECT_EQ(stack.admin({"audit", "export", "--since", "yesterday"}).exit_code, 2);
}

// client rotate refuses what it cannot do and then changes nothing: the old secret still
// works alone. --grace 0s replaces the secret at once.
TEST(Server, ClientRotateRefusesBadInputAndChangesNothing) {
  StackOptions options;
  options.start_daemon = false;
  Stack stack(options);
  const std::string id = stack.client_id();
  for (const std::string& grace :
       std::vector<std::string>{"", "soon", "-1s", "721h", "24", std::string(300, '9')}) {
    auto refused = stack.admin({"client", "rotate", id, "--grace", grace});
    EXPECT_EQ(refused.exit_code, 2) << grace << ": " << refused.err;
    EXPECT_EQ(refused.out, "") << grace;
  }
  EXPECT_EQ(stack.admin({"client", "rotate"}).exit_code, 2);  // no client id
  auto unknown = stack.admin({"client", "rotate", "sgc_nobody"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no such client"), std::string::npos) << unknown.err;
  // A secret file that exists is not overwritten, and the rotation does not happen.
  write_file(stack.dir().file("taken"), "keep me\n", 0600);
  auto taken = stack.admin({"client", "rotate", id, "--secret-file", stack.dir().file("taken")});
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_EQ(read_file(stack.dir().file("taken")), "keep me\n");
  auto listed = stack.admin({"client", "list", "--json"});
  EXPECT_TRUE(json::parse(listed.out).at(0)["previousSecretUntil"].is_null()) << listed.out;

  httplib::Client http("127.0.0.1", stack.port());
  const auto ask = [&](const std::string& secret) {
    auto res = http.Post("/oauth/token", httplib::Params{{"grant_type", "client_credentials"},
                                                         {"client_id", id},
                                                         {"client_secret", secret}});
    return res ? res->status : -1;
  };
  const std::string old_secret = stack.client_secret();
  EXPECT_EQ(ask(old_secret), 200);

  auto now = stack.admin({"client", "rotate", id, "--grace", "0s", "--json"});
  ASSERT_EQ(now.exit_code, 0) << now.err;
  const auto rotated = json::parse(now.out);
  EXPECT_TRUE(rotated["previousSecretUntil"].is_null());
  EXPECT_EQ(ask(old_secret), 401);
  EXPECT_EQ(ask(rotated["clientSecret"]), 200);

  // A revoked client is not rotated.
  ASSERT_EQ(stack.admin({"client", "revoke", id}).exit_code, 0);
  EXPECT_EQ(stack.admin({"client", "rotate", id}).exit_code, 1);
}

// A self-signed certificate for 127.0.0.1 made with the openssl CLI, as an operator would.
void make_certificate(const TempDir& dir) {
  auto made = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                   dir.file("tls.key"), "-out", dir.file("tls.crt"), "-days", "2", "-subj",
                   "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ::chmod(dir.file("tls.key").c_str(), 0600);
}

TEST(Server, ServesTlsToTheDaemonAndRefusesOldProtocols) {
  TempDir certs;
  make_certificate(certs);
  StackOptions options;
  options.server_settings =
      "tls_cert = \"" + certs.file("tls.crt") + "\"\ntls_key = \"" + certs.file("tls.key") + "\"\n";
  options.gateway_scheme = "https";
  options.gateway_settings = "ca_file = \"" + certs.file("tls.crt") + "\"\n";
  Stack stack(options);
  auto done = stack.cli({"--json", "submit", "order", "--data", kOrder, "--wait"});
  ASSERT_EQ(done.exit_code, 0) << done.err << stack.daemon_log();
  EXPECT_EQ(json::parse(done.out)["state"], "completed");
  EXPECT_NE(stack.server_log().find("https://127.0.0.1"), std::string::npos) << stack.server_log();

  const std::string url = "https://127.0.0.1:" + std::to_string(stack.port()) + "/health/live";
  auto modern = run({"/usr/bin/curl", "-sS", "--cacert", certs.file("tls.crt"), url});
  EXPECT_EQ(modern.exit_code, 0) << modern.err;
  EXPECT_NE(modern.out.find("ok"), std::string::npos);
  auto old = run({"/usr/bin/curl", "-sS", "--cacert", certs.file("tls.crt"), "--tlsv1.1",
                  "--tls-max", "1.1", url});
  EXPECT_NE(old.exit_code, 0) << "TLS 1.1 was accepted";
  auto untrusted = run({"/usr/bin/curl", "-sS", url});
  EXPECT_NE(untrusted.exit_code, 0);
}

TEST(Server, RefusesPlainHttpBeyondLoopbackAndBadTlsFiles) {
  StackOptions options;
  options.start_daemon = false;
  Stack stack(options);
  stack.stop_server();
  auto exposed = run({binary("stargate-server"), "serve", "--config",
                      stack.dir().file("server.toml"), "--listen", "0.0.0.0:0"});
  EXPECT_EQ(exposed.exit_code, 1);
  EXPECT_NE(exposed.err.find("refusing plain HTTP"), std::string::npos) << exposed.err;

  TempDir certs;
  make_certificate(certs);
  ::chmod(certs.file("tls.key").c_str(), 0644);
  write_file(stack.dir().file("tls.toml"), "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"" +
                                               stack.dir().file("server") + "\"\ntls_cert = \"" +
                                               certs.file("tls.crt") + "\"\ntls_key = \"" +
                                               certs.file("tls.key") + "\"\n");
  auto readable =
      run({binary("stargate-server"), "serve", "--config", stack.dir().file("tls.toml")});
  EXPECT_EQ(readable.exit_code, 1);
  EXPECT_NE(readable.err.find("chmod 600"), std::string::npos) << readable.err;
}

// A second server on a port already served must fail, not share the port: with
// SO_REUSEPORT (cpp-httplib's default) it would silently take part of the connections, and
// processes would seem to vanish between two stores.
TEST(Server, ASecondServerOnTheSamePortFailsToStart) {
  StackOptions options;
  options.start_daemon = false;
  Stack stack(options);
  write_file(stack.dir().file("second.toml"),
             "[server]\nlisten = \"127.0.0.1:" + std::to_string(stack.port()) +
                 "\"\nstate_dir = \"" + stack.dir().file("second") + "\"\n");
  auto second =
      run({binary("stargate-server"), "serve", "--config", stack.dir().file("second.toml")});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("cannot listen on 127.0.0.1:" + std::to_string(stack.port())),
            std::string::npos)
      << second.err;
}

// Connections opened and left idle (more than there are HTTP threads) do not keep a real
// client from being served: the server takes a connection only once it has sent something,
// and its listen backlog takes a burst of connections without dropping any.
TEST(Server, IdleConnectionsDoNotStarveRealClients) {
  StackOptions options;
  options.start_daemon = false;
  Stack stack(options);
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(stack.port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0)
        << std::strerror(errno);
    idle.push_back(fd);
  }
  // Unfixed, this waited for the idle connections to time out (5 s and more).
  httplib::Client http("127.0.0.1", stack.port());
  http.set_connection_timeout(3, 0);
  http.set_read_timeout(3, 0);
  auto live = http.Get("/health/live");
  ASSERT_TRUE(live) << httplib::to_string(live.error());
  EXPECT_EQ(live->status, 200);
  for (const int fd : idle)
    ::close(fd);
}

// Every error of INTERFACES.md that a client can provoke, with its status and body.
TEST(Server, AnswersEveryClientErrorWithItsBody) {
  StackOptions options;
  options.server_settings = "max_body_bytes = 4096\n";
  options.server_extra = "[rate_limit.tenants.acme]\nper_minute = 60\nburst = 12\n";
  options.start_daemon = false;
  Stack stack(options);
  httplib::Client http("127.0.0.1", stack.port());
  auto token_res =
      http.Post("/oauth/token", httplib::Params{{"grant_type", "client_credentials"},
                                                {"client_id", stack.client_id()},
                                                {"client_secret", stack.client_secret()}});
  ASSERT_EQ(token_res->status, 200) << token_res->body;
  const std::string token = json::parse(token_res->body)["access_token"];
  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  auto body = [](const std::string& key, const std::string& type = "order") {
    return json{{"clientProcessId", "c-" + key},
                {"processType", type},
                {"data", json::parse(kOrder)},
                {"idempotencyKey", key}}
        .dump();
  };
  auto check = [](const httplib::Result& res, int status, const char* code) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << res->body;
    const auto error = json::parse(res->body);
    EXPECT_EQ(error["error"], code);
    EXPECT_TRUE(error["message"].is_string());
    EXPECT_TRUE(error["timestamp"].is_string());
    EXPECT_EQ(error["correlationId"], res->get_header_value("X-Correlation-ID"));
  };
  auto accepted = http.Post("/api/stargate/processes", auth, body("k1"), "application/json");
  ASSERT_EQ(accepted->status, 202);
  const std::string id = json::parse(accepted->body)["processId"];
  check(http.Post("/api/stargate/processes", auth, "{", "application/json"), 400,
        "INVALID_REQUEST");
  check(http.Post("/api/stargate/processes", body("k2"), "application/json"), 401, "INVALID_TOKEN");
  check(http.Post("/api/stargate/processes", auth, body("k3", "teleport"), "application/json"), 403,
        "INSUFFICIENT_PERMISSIONS");
  check(http.Get("/api/stargate/processes/PROC-20990101-00001", auth), 404, "NOT_FOUND");
  check(http.Post("/api/stargate/processes/" + id + "/retry", auth, "", "application/json"), 409,
        "NOT_RETRYABLE");
  check(http.Post("/api/stargate/processes", auth, std::string(5000, ' '), "application/json"), 413,
        "PAYLOAD_TOO_LARGE");
  check(http.Post("/api/stargate/processes", auth, body("k4"), "text/plain"), 415,
        "UNSUPPORTED_MEDIA_TYPE");
  auto reused = json::parse(body("k1"));
  reused["data"]["orderId"] = "ORD-OTHER";
  check(http.Post("/api/stargate/processes", auth, reused.dump(), "application/json"), 422,
        "IDEMPOTENCY_KEY_REUSED");
  auto limited = http.Get("/api/stargate/processes", auth);
  for (int i = 0; i < 20 && limited->status != 429; ++i) {
    limited = http.Get("/api/stargate/processes", auth);
  }
  check(limited, 429, "RATE_LIMIT_EXCEEDED");
  EXPECT_FALSE(limited->get_header_value("Retry-After").empty());
  EXPECT_TRUE(json::parse(limited->body)["retryAfter"].is_number());
  // Hostile input left it serving.
  EXPECT_EQ(http.Get("/health/ready")->status, 200);
}

// kill -9 while processes run, then a restart: every process completes, and none twice.
TEST(Server, ResumesAfterKillNineAndRunsEachProcessToOneEnd) {
  StackOptions options;
  options.step_duration = "150ms";
  options.server_extra = "[rate_limit]\nper_minute = 1000000\nburst = 100000\n";
  options.start_daemon = false;
  Stack stack(options);
  httplib::Client http("127.0.0.1", stack.port());
  auto token_of = [&] {
    auto res = http.Post("/oauth/token", httplib::Params{{"grant_type", "client_credentials"},
                                                         {"client_id", stack.client_id()},
                                                         {"client_secret", stack.client_secret()}});
    return json::parse(res->body)["access_token"].get<std::string>();
  };
  const httplib::Headers auth = {{"Authorization", "Bearer " + token_of()}};
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) {
    auto res = http.Post("/api/stargate/processes", auth,
                         json{{"clientProcessId", "c" + std::to_string(i)},
                              {"processType", "order"},
                              {"data", json::parse(kOrder)}}
                             .dump(),
                         "application/json");
    ASSERT_EQ(res->status, 202);
    ids.push_back(json::parse(res->body)["processId"]);
  }
  // Wait until work is under way, then kill without warning.
  ASSERT_TRUE(
      wait_until([&] { return stack.server_log().find("order started") != std::string::npos; },
                 std::chrono::seconds(10)));
  EXPECT_EQ(stack.stop_server(SIGKILL), 128 + SIGKILL);
  stack.start_server();
  httplib::Client again("127.0.0.1", stack.port());
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& id : ids) {
          auto res = again.Get("/api/stargate/processes/" + id, auth);
          if (!res || json::parse(res->body)["status"] != "completed") return false;
        }
        return true;
      },
      std::chrono::seconds(60)))
      << stack.server_log();
  auto exported = stack.admin({"audit", "export", "--since", "1h"});
  std::map<std::string, int> completions;
  std::istringstream lines(exported.out);
  for (std::string line; std::getline(lines, line);) {
    const auto record = json::parse(line);
    if (record["kind"] == "state" && record["to"] == "completed")
      ++completions[record["processId"]];
  }
  EXPECT_EQ(completions.size(), ids.size());
  for (const auto& [id, count] : completions)
    EXPECT_EQ(count, 1) << id;
  EXPECT_EQ(stack.admin({"audit", "verify"}).exit_code, 0);
}

// Another program holds the store's write lock: readiness names the store, a submission gets
// 503 with its error body, reads go on, and a process whose handler ends meanwhile is saved
// once the lock is gone instead of staying "processing" for good.
TEST(Server, ReportsAStoreItCannotWriteAndRecoversWhenItCan) {
  TempDir scripts;
  const std::string gate = scripts.file("open");
  write_file(scripts.file("gated.sh"),
             "while [ ! -e '" + gate + "' ]; do sleep 0.05; done\necho '{\"opened\":true}'\n");
  StackOptions options;
  options.start_daemon = false;
  options.server_extra =
      "[process_types.order]\n[process_types.gated]\nhandler = \"exec\"\n"
      "command = [\"/bin/sh\", \"" +
      scripts.file("gated.sh") + "\"]\n";
  Stack stack(options);
  auto added = stack.admin({"client", "add", "--tenant", "acme", "--process-types", "order,gated",
                            "--secret-file", scripts.file("secret")});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const std::string client_id = added.out.substr(0, added.out.find('\n'));
  const std::string secret = read_file(scripts.file("secret"));
  httplib::Client http("127.0.0.1", stack.port());
  http.set_read_timeout(30, 0);
  auto token_res = http.Post(
      "/oauth/token", httplib::Params{{"grant_type", "client_credentials"},
                                      {"client_id", client_id},
                                      {"client_secret", secret.substr(0, secret.find('\n'))}});
  ASSERT_EQ(token_res->status, 200) << token_res->body;
  const httplib::Headers auth = {
      {"Authorization",
       "Bearer " + json::parse(token_res->body)["access_token"].get<std::string>()}};
  auto submit = [&](const std::string& id, const std::string& type) {
    return http.Post(
        "/api/stargate/processes", auth,
        json{{"clientProcessId", id}, {"processType", type}, {"data", json::object()}}.dump(),
        "application/json");
  };
  auto gated = submit("gated-1", "gated");
  ASSERT_EQ(gated->status, 202) << gated->body;
  const std::string gated_id = json::parse(gated->body)["processId"];
  ASSERT_TRUE(
      wait_until([&] { return stack.server_log().find("gated started") != std::string::npos; },
                 std::chrono::seconds(10)))
      << stack.server_log();

  db::Database holder(stack.dir().file("server/stargate-server.db"));
  holder.exec("BEGIN IMMEDIATE");
  auto ready = http.Get("/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(json::parse(ready->body)["failing"], json::array({"store"}));
  auto refused = submit("order-1", "order");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(json::parse(refused->body)["error"], "SERVICE_UNAVAILABLE");
  EXPECT_EQ(http.Get("/api/stargate/processes/" + gated_id, auth)->status, 200);
  // The handler ends while the store is locked: its outcome cannot be saved yet.
  write_file(gate, "");
  ASSERT_TRUE(wait_until(
      [&] { return stack.server_log().find("cannot save outcome") != std::string::npos; },
      std::chrono::seconds(20)))
      << stack.server_log();
  holder.exec("ROLLBACK");

  ASSERT_TRUE(wait_until(
      [&] {
        auto res = http.Get("/api/stargate/processes/" + gated_id, auth);
        return res && json::parse(res->body)["status"] == "completed";
      },
      std::chrono::seconds(20)))
      << stack.server_log();
  EXPECT_EQ(json::parse(http.Get("/api/stargate/processes/" + gated_id, auth)->body)["result"],
            json({{"opened", true}}));
  EXPECT_EQ(http.Get("/health/ready")->status, 200);
  EXPECT_EQ(submit("order-2", "order")->status, 202);
  EXPECT_EQ(stack.admin({"audit", "verify"}).exit_code, 0);
}

}  // namespace
}  // namespace stargate::test
