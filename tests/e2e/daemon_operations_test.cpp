// stargated as operators drive it, against the real stargate-server on loopback: its
// socket API (who may use it, and that it answers as its OpenAPI document says), SIGHUP
// reloads and a rotated secret, and systemd's readiness, watchdog and socket activation.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <sstream>
#include <thread>

#include "tests/e2e/daemon_helpers.hpp"
#include "tests/support/socket_client.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Sends SIGHUP to the daemon; true once its log, after that point, says `line`.
bool reload_and_see(Stack& stack, const std::string& line) {
  return sighup_and_see(*stack.daemon(), stack.dir().file("daemon.log"), line);
}

TEST(Daemon, RefusesBrowsersAndServesItsApiToCurl) {
  Stack stack(fast_stack());
  auto curl = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-s",          "-o",
                                     "/dev/null",     "-w",          "%{http_code}",
                                     "--unix-socket", stack.socket()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv).out;
  };
  EXPECT_EQ(curl({"http://localhost/v1/health"}), "200");
  EXPECT_EQ(curl({"-H", "Origin: http://evil.example", "http://localhost/v1/health"}), "403");
  EXPECT_EQ(curl({"-H", "Referer: http://evil.example/", "http://localhost/v1/health"}), "403");
  EXPECT_EQ(curl({"http://evil.example/v1/health"}), "403");
  auto client = socket_client(stack.socket());
  auto metrics = client->Get("/v1/metrics");
  ASSERT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("stargated_requests{state=\"queued\"}"), std::string::npos);
  const auto health = json::parse(client->Get("/v1/health")->body);
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["version"], "0.1.0");
}

TEST(Daemon, ReloadsWhatItCanOnSighup) {
  Stack stack(fast_stack());
  auto config = read_file(stack.dir().file("stargated.toml"));
  config += "[log]\nlevel = \"debug\"\n";
  write_file(stack.dir().file("stargated.toml"), config);
  // The socket's process is the daemon; find its pid from the Stack's child.
  ASSERT_TRUE(stack.daemon() != nullptr);
  ASSERT_TRUE(reload_and_see(stack, "reload: log level info -> debug")) << stack.daemon_log();
  // A broken file changes nothing and says why.
  write_file(stack.dir().file("stargated.toml"), config + "[polling]\nbogus = 1\n");
  ASSERT_TRUE(reload_and_see(stack, "configuration not changed")) << stack.daemon_log();
  auto client = socket_client(stack.socket());
  EXPECT_EQ(submit(*client, "after-reload")->status, 202);
}

TEST(Daemon, TellsSystemdItIsReadyAndHowItIsDoing) {
  TempDir dir;
  const std::string notify = dir.file("notify.sock");
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", notify.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  auto options = fast_stack();
  options.start_daemon = false;
  Stack stack(options);
  stack.start_daemon(0, {"NOTIFY_SOCKET=" + notify, "WATCHDOG_USEC=1000000"});
  std::string received;
  ASSERT_TRUE(wait_until(
      [&] {
        char buffer[4096];
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) received.append(buffer, static_cast<std::size_t>(n)).append("\n");
        return received.find("READY=1") != std::string::npos &&
               received.find("WATCHDOG=1") != std::string::npos;
      },
      10s))
      << received;
  EXPECT_NE(received.find("STATUS=0 queued, 0 active"), std::string::npos) << received;
  ::close(fd);
}

TEST(Daemon, AcceptsASocketFromSystemd) {
  auto options = fast_stack();
  options.start_daemon = false;
  Stack stack(options);
  const std::string path = stack.dir().file("activated.sock");
  const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  stack.start_daemon(0, {}, listener);
  ::close(listener);
  EXPECT_NE(stack.daemon_log().find("using the socket passed by systemd"), std::string::npos);
  auto client = socket_client(path);
  ASSERT_EQ(submit(*client, "activated")->status, 202);
}

// The real daemon answers each operation of its OpenAPI document (docs/openapi/stargated.json)
// with a status that the document lists for it, and a path of the document asked with a
// method it does not list finds no endpoint.
TEST(Daemon, TheSocketApiAnswersAsItsOpenApiDocumentSays) {
  Stack stack;
  auto client = socket_client(stack.socket());
  const json paths = json::parse(
      read_file(std::string(STARGATE_SOURCE_DIR) + "/docs/openapi/stargated.json"))["paths"];
  auto first = submit(*client, "doc-1");
  ASSERT_TRUE(first && first->status == 202);
  ASSERT_TRUE(client->Get("/v1/processes/doc-1/wait?timeout=30"));
  for (const auto& [path, operations] : paths.items()) {
    std::string url = path;
    if (const auto at = url.find("{id}"); at != std::string::npos) url.replace(at, 4, "doc-1");
    for (const auto& [method, operation] : operations.items()) {
      httplib::Result res =
          method == "get"
              ? client->Get(url + (url.find("/wait") != std::string::npos ? "?timeout=0" : ""))
              : client->Post(url,
                             json{{"processType", "order"},
                                  {"clientProcessId", "doc-2"},
                                  {"data", json::parse(kOrder)}}
                                 .dump(),
                             "application/json");
      ASSERT_TRUE(res) << method << " " << url;
      EXPECT_TRUE(operation["responses"].contains(std::to_string(res->status)))
          << method << " " << url << " answered " << res->status << ": " << res->body;
      EXPECT_EQ(res->body.find("No such endpoint"), std::string::npos) << method << " " << url;
    }
    for (const std::string method : {"get", "post"}) {
      if (operations.contains(method)) continue;
      auto res = method == "get" ? client->Get(url) : client->Post(url, "{}", "application/json");
      ASSERT_TRUE(res) << method << " " << url;
      EXPECT_EQ(res->status, 404) << method << " " << url;
      EXPECT_NE(res->body.find("No such endpoint"), std::string::npos) << res->body;
    }
  }
}

// A rotated secret: the operator replaces the secret file. A token request refused with
// invalid_client makes the daemon read the file again and ask once more, so what was
// queued meanwhile is sent, nothing lost; SIGHUP reads it again too, and a file that cannot
// be used then leaves the secret held in place.
TEST(Daemon, AReplacedSecretFileIsReadAgainAndNothingIsLost) {
  StackOptions options;
  options.start_daemon = false;
  Stack stack(options);
  const std::string secret_file = stack.dir().file("client_secret");
  const std::string secret = read_file(secret_file);
  write_file(secret_file, "an-old-secret", 0600);
  stack.start_daemon();
  auto client = socket_client(stack.socket());
  auto sent = submit(*client, "rot-1");
  ASSERT_TRUE(sent && sent->status == 202);
  ASSERT_TRUE(wait_until(
      [&] {
        const auto last = record(*client, "rot-1").value("lastError", json());
        // The error says what to do, and where.
        return last.is_string() &&
               last.get<std::string>().find("invalid_client") != std::string::npos &&
               last.get<std::string>().find("put the current secret in " + secret_file) !=
                   std::string::npos;
      },
      20s))
      << stack.daemon_log();
  write_file(secret_file, secret, 0600);  // the operator puts the new secret in place
  ASSERT_TRUE(
      wait_until([&] { return record(*client, "rot-1").value("state", "") == "completed"; }, 30s))
      << stack.daemon_log();
  EXPECT_NE(stack.daemon_log().find("asking again with the secret now in its file"),
            std::string::npos);

  // SIGHUP: a file others may read is refused and the secret held stays in use...
  ::chmod(secret_file.c_str(), 0644);
  ASSERT_TRUE(reload_and_see(stack, "client secret not read again")) << stack.daemon_log();
  ::chmod(secret_file.c_str(), 0600);
  ASSERT_TRUE(reload_and_see(stack, "reload: client secret read again")) << stack.daemon_log();
  auto again = submit(*client, "rot-2");
  ASSERT_TRUE(again && again->status == 202);
  EXPECT_TRUE(
      wait_until([&] { return record(*client, "rot-2").value("state", "") == "completed"; }, 30s))
      << stack.daemon_log();
}

// The rotation as stargate-server(8) describes it, against a running daemon that keeps
// working throughout: `client rotate` issues a new secret while the daemon still asks for
// tokens with the old one (accepted for the grace); the operator puts the new file in place
// and reloads the daemon; after the grace only the new secret works. No request fails.
TEST(Daemon, SurvivesAServerSideRotationWithoutOneFailedRequest) {
  StackOptions options = fast_stack();
  options.server_extra += "[auth]\ntoken_lifetime = \"2s\"\n";  // a token request every ~2 s
  Stack stack(options);
  auto client = socket_client(stack.socket());
  std::vector<std::string> ids;
  const auto submit_and_follow = [&](const std::string& id) {
    auto sent = submit(*client, id);
    ASSERT_TRUE(sent && sent->status == 202);
    ids.push_back(id);
    ASSERT_TRUE(
        wait_until([&] { return record(*client, id).value("state", "") == "completed"; }, 30s))
        << stack.daemon_log();
  };
  submit_and_follow("before");

  const std::string old_secret = stack.client_secret();
  const std::string new_file = stack.dir().file("new_secret");
  const auto rotated_at = std::chrono::steady_clock::now();
  auto rotated = stack.admin(
      {"client", "rotate", stack.client_id(), "--grace", "12s", "--secret-file", new_file});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_EQ(rotated.out, stack.client_id() + "\n");  // the secret went to the file only
  EXPECT_NE(rotated.err.find("previous secret stays accepted until"), std::string::npos);
  auto listed = stack.admin({"client", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0);
  EXPECT_TRUE(json::parse(listed.out).at(0)["previousSecretUntil"].is_string()) << listed.out;

  // The daemon, not reloaded yet, gets its tokens with the old secret (once the one it holds
  // expires, for its next request) and goes on working.
  const std::size_t server_before = stack.server_log().size();
  const auto old_secret_used = [&] {
    return stack.server_log().find("authenticated with its previous secret", server_before) !=
           std::string::npos;
  };
  for (int i = 0; i < 8 && !old_secret_used(); ++i) {
    submit_and_follow("during-grace-" + std::to_string(i));
    std::this_thread::sleep_for(500ms);
  }
  ASSERT_TRUE(old_secret_used()) << stack.server_log();

  // The operator puts the new secret in place and reloads.
  ASSERT_EQ(::rename(new_file.c_str(), stack.dir().file("client_secret").c_str()), 0);
  ASSERT_TRUE(reload_and_see(stack, "reload: client secret read again")) << stack.daemon_log();
  submit_and_follow("after-reload");

  // After the grace the old secret is refused, the new one is not.
  std::this_thread::sleep_until(rotated_at + 13s);
  httplib::Client gateway("127.0.0.1", stack.port());
  const auto ask = [&](const std::string& secret) {
    auto res = gateway.Post("/oauth/token", httplib::Params{{"grant_type", "client_credentials"},
                                                            {"client_id", stack.client_id()},
                                                            {"client_secret", secret}});
    return res ? res->status : -1;
  };
  EXPECT_EQ(ask(old_secret), 401);
  EXPECT_EQ(ask(stack.client_secret()), 200);
  submit_and_follow("after-grace");

  // Not one request failed, nor one token request.
  for (const auto& id : ids)
    EXPECT_TRUE(record(*client, id)["lastError"].is_null()) << id << ": " << record(*client, id);
  EXPECT_EQ(stack.daemon_log().find("invalid_client"), std::string::npos) << stack.daemon_log();

  // The audit trail has the rotation (naming both secrets, revealing neither) and the token
  // requests that used the old secret.
  auto exported = stack.admin({"audit", "export", "--since", "1h"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  bool saw_rotation = false, saw_previous = false;
  std::istringstream lines(exported.out);
  for (std::string line; std::getline(lines, line);) {
    const auto fields = json::parse(line);
    if (fields.value("action", "") == "client rotate") {
      saw_rotation = true;
      EXPECT_EQ(fields["clientId"], stack.client_id());
      EXPECT_TRUE(fields["secretId"].is_string());
      EXPECT_NE(fields["secretId"], fields["previousSecretId"]);
    }
    if (fields.value("secret", "") == "previous") saw_previous = true;
  }
  EXPECT_TRUE(saw_rotation) << exported.out;
  EXPECT_TRUE(saw_previous) << exported.out;
  EXPECT_EQ(exported.out.find(old_secret), std::string::npos);
  EXPECT_EQ(exported.out.find(stack.client_secret()), std::string::npos);
}

}  // namespace
}  // namespace stargate::test
