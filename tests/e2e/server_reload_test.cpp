// stargate-server's SIGHUP reload with the real binary: what it applies while requests are
// served (rate limits under load, with no connection dropped; the TLS certificate, with a
// request held across the swap; process types, on one node and across the scale-out's
// gateways and workers), what it names as needing a restart, and a configuration with
// errors, which changes nothing.
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "shared/clock.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Sends SIGHUP to the server; true once its log, after that point, says `line`.
bool reload_and_see(Stack& stack, const std::string& line) {
  return sighup_and_see(*stack.server(), stack.dir().file("server.log"), line);
}

// Replaces `from` with `to` in the stack's server.toml.
void edit_config(Stack& stack, const std::string& from, const std::string& to) {
  const std::string path = stack.dir().file("server.toml");
  std::string text = read_file(path);
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from << " not in " << text;
  text.replace(at, from.size(), to);
  write_file(path, text, 0600);
}

std::string token(Stack& stack, const std::string& client_id, const std::string& secret) {
  httplib::Client http("127.0.0.1", stack.port());
  auto res = http.Post("/oauth/token", httplib::Params{{"grant_type", "client_credentials"},
                                                       {"client_id", client_id},
                                                       {"client_secret", secret}});
  if (!res || res->status != 200) return "";
  return json::parse(res->body)["access_token"];
}

std::string token(Stack& stack) {
  return token(stack, stack.client_id(), stack.client_secret());
}

// Four clients on kept-alive connections ask without a pause while the tenant's limit is
// raised by a reload: every request is answered (none reset or dropped), and the answers
// after the reload carry the new limit. Then a broken file changes nothing, and a change
// that needs a restart is named.
TEST(ServerReload, RateLimitsChangeUnderLoadWithoutAResetAndRestartOnlyKeysAreNamed) {
  StackOptions options;
  options.start_daemon = false;
  options.server_extra = "[rate_limit]\nper_minute = 600\nburst = 50\n";
  Stack stack(options);
  const std::string bearer = token(stack);
  ASSERT_FALSE(bearer.empty());

  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0};
  std::mutex seen_mutex;
  std::set<std::string> limits_seen;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      httplib::Client http("127.0.0.1", stack.port());
      http.set_keep_alive(true);
      http.set_read_timeout(10, 0);
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      for (int i = 0; i < 20000 && !stop && std::chrono::steady_clock::now() < deadline; ++i) {
        auto res =
            http.Get("/api/stargate/processes?limit=1", {{"Authorization", "Bearer " + bearer}});
        if (!res || (res->status != 200 && res->status != 429)) {
          ++failed;
          continue;
        }
        ++answered;
        std::lock_guard lock(seen_mutex);
        limits_seen.insert(res->get_header_value("X-RateLimit-Limit"));
      }
    });
  }
  ASSERT_TRUE(wait_until([&] { return answered > 200; }, 20s));
  edit_config(stack, "per_minute = 600\n", "per_minute = 120000\n");
  edit_config(stack, "burst = 50\n", "burst = 100000\n");
  ASSERT_TRUE(reload_and_see(stack, "reload: applied rate limits")) << stack.server_log();
  const int at_reload = answered;
  {
    std::lock_guard lock(seen_mutex);
    limits_seen.clear();
  }
  ASSERT_TRUE(wait_until([&] { return answered > at_reload + 200; }, 20s));
  stop = true;
  for (auto& client : clients)
    client.join();
  EXPECT_EQ(failed, 0) << "requests not answered while the server reloaded";
  EXPECT_TRUE(limits_seen.count("120000")) << "the new limit was not applied";
  EXPECT_EQ(stack.server_log().find("reload: applied rate limits; changed but needs"),
            std::string::npos);

  // A file with an error: logged, nothing applied, the running limits stay.
  edit_config(stack, "per_minute = 120000\n", "per_minute = \"lots\"\n");
  ASSERT_TRUE(reload_and_see(stack, "reload: configuration not applied")) << stack.server_log();
  httplib::Client http("127.0.0.1", stack.port());
  auto after = http.Get("/api/stargate/processes?limit=1", {{"Authorization", "Bearer " + bearer}});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->get_header_value("X-RateLimit-Limit"), "120000");

  // What needs a restart is named, and not applied.
  edit_config(stack, "per_minute = \"lots\"\n", "per_minute = 120000\n");
  edit_config(stack, "[order]\n", "[engine]\nworkers = 7\n[log]\nlevel = \"debug\"\n[order]\n");
  ASSERT_TRUE(reload_and_see(stack,
                             "reload: applied log level; changed but needs a restart: "
                             "[engine]"))
      << stack.server_log();
  EXPECT_TRUE(stack.server()->running());
}

httplib::Result submit(Stack& stack, const std::string& bearer, const std::string& type,
                       const json& data) {
  httplib::Client http("127.0.0.1", stack.port());
  return http.Post(
      "/api/stargate/processes", {{"Authorization", "Bearer " + bearer}},
      json{{"processType", type}, {"clientProcessId", "c-" + type}, {"data", data}}.dump(),
      "application/json");
}

json status(Stack& stack, const std::string& bearer, const std::string& id) {
  httplib::Client http("127.0.0.1", stack.port());
  auto res = http.Get("/api/stargate/processes/" + id, {{"Authorization", "Bearer " + bearer}});
  return res && res->status == 200 ? json::parse(res->body) : json::object();
}

// Waits for the process to end; its last status.
json finished(Stack& stack, const std::string& bearer, const std::string& id) {
  json last;
  wait_until(
      [&] {
        last = status(stack, bearer, id);
        const auto state = last.value("status", "");
        return state == "completed" || state == "failed";
      },
      30s);
  return last;
}

// Process types and handler settings change by a reload for what starts after it: a new
// exec type is taken and run with its command and expected duration, a restocked SKU lets
// a failed order through on retry, an order running across the reload finishes, a type
// removed from the file is refused to new requests.
TEST(ServerReload, ProcessTypesAndHandlerSettingsApplyToWhatStartsAfterTheReload) {
  StackOptions options;
  options.start_daemon = false;
  options.step_duration = "400ms";  // an order takes about 1.6 s: long enough to span a reload
  options.server_extra =
      "[rate_limit]\nper_minute = 100000\nburst = 10000\n[order.stock]\nSKU-R = 1\n";
  Stack stack(options);
  const std::string script = stack.dir().file("echo.sh");
  write_file(script, "#!/bin/sh\nread -r line\nprintf '{\"got\": %s}\\n' \"$line\"\n", 0755);
  const std::string secret_file = stack.dir().file("echo_secret");
  auto added = run({binary("stargate-server"), "client", "add", "--config",
                    stack.dir().file("server.toml"), "--tenant", "acme", "--process-types",
                    "order,shipping,echo", "--secret-file", secret_file});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  std::string secret = read_file(secret_file);
  while (!secret.empty() && secret.back() == '\n')
    secret.pop_back();
  const std::string bearer = token(stack, added.out.substr(0, added.out.find('\n')), secret);
  ASSERT_FALSE(bearer.empty());

  const json short_order = {{"orderId", "ORD-R"}, {"items", {{{"sku", "SKU-R"}, {"quantity", 2}}}}};
  auto accepted = submit(stack, bearer, "order", short_order);
  ASSERT_TRUE(accepted && accepted->status == 202);
  const std::string short_id = json::parse(accepted->body)["processId"];
  EXPECT_EQ(finished(stack, bearer, short_id)["error"].value("code", ""), "INVENTORY_INSUFFICIENT");
  auto unknown = submit(stack, bearer, "echo", {{"text", "hi"}});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400) << unknown->body;

  const json order = {{"orderId", "ORD-1"}, {"items", {{{"sku", "SKU-001"}, {"quantity", 1}}}}};
  auto running = submit(stack, bearer, "order", order);
  ASSERT_TRUE(running && running->status == 202);
  const std::string running_id = json::parse(running->body)["processId"];
  ASSERT_TRUE(wait_until(
      [&] { return status(stack, bearer, running_id).value("status", "") == "processing"; }, 10s));
  edit_config(stack, "SKU-R = 1\n", "SKU-R = 5\n");
  edit_config(stack, "[order.stock]\n",
              "[process_types.order]\n[process_types.echo]\nhandler = \"exec\"\ncommand = [\"" +
                  script + "\"]\nexpected_duration = \"42s\"\n[order.stock]\n");
  ASSERT_TRUE(reload_and_see(stack, "reload: applied process types")) << stack.server_log();
  EXPECT_EQ(stack.server_log().find("needs a restart"), std::string::npos) << stack.server_log();
  EXPECT_NE(stack.server_log().find("process type shipping is no longer configured"),
            std::string::npos)
      << stack.server_log();
  EXPECT_EQ(finished(stack, bearer, running_id).value("status", ""), "completed");

  // The new type: accepted with its expected duration, run with its command.
  auto echo = submit(stack, bearer, "echo", {{"text", "hi"}});
  ASSERT_TRUE(echo && echo->status == 202) << (echo ? echo->body : "no answer");
  const json echo_view = json::parse(echo->body);
  const std::string echo_id = echo_view["processId"];
  const json done = finished(stack, bearer, echo_id);
  ASSERT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(done["result"]["got"]["data"], json({{"text", "hi"}}));
  EXPECT_EQ(done["result"]["got"]["processId"], echo_id);
  const auto created = parse_timestamp(echo_view.value("createdAt", ""));
  const auto estimate = parse_timestamp(echo_view.value("estimatedCompletionTime", ""));
  ASSERT_TRUE(created && estimate) << echo->body;
  EXPECT_EQ(*estimate - *created, 42s) << echo->body;

  // Restocked: the failed order goes through on retry.
  httplib::Client http("127.0.0.1", stack.port());
  auto retried = http.Post("/api/stargate/processes/" + short_id + "/retry",
                           {{"Authorization", "Bearer " + bearer}}, "", "application/json");
  ASSERT_TRUE(retried);
  ASSERT_EQ(retried->status, 202) << retried->body;
  EXPECT_EQ(finished(stack, bearer, short_id).value("status", ""), "completed");

  // Removed: refused to new requests.
  auto shipping = submit(stack, bearer, "shipping",
                         {{"shipmentId", "S-1"}, {"destination", "x"}, {"items", json::array()}});
  ASSERT_TRUE(shipping);
  EXPECT_EQ(shipping->status, 400) << shipping->body;

  // A broken exec type (a relative program) is refused and the running one stays.
  edit_config(stack, "command = [\"" + script + "\"]", "command = [\"echo.sh\"]");
  ASSERT_TRUE(reload_and_see(stack, "reload: configuration not applied")) << stack.server_log();
  EXPECT_NE(stack.server_log().find("the program must be an absolute path"), std::string::npos)
      << stack.server_log();
  auto still = submit(stack, bearer, "echo", {{"text", "again"}});
  ASSERT_TRUE(still && still->status == 202) << (still ? still->body : "no answer");
  const json again = finished(stack, bearer, json::parse(still->body)["processId"]);
  EXPECT_EQ(again["result"]["got"]["data"], json({{"text", "again"}})) << again.dump();
  EXPECT_TRUE(stack.server()->running());
}

// A type removed from the file while one of its processes runs: the process keeps its
// handler until the server stops, and after the next start (the type gone) it fails with
// NO_HANDLER, not retryable, instead of waiting for a handler for good.
TEST(ServerReload, AProcessOfARemovedTypeFailsWithNoHandlerAfterTheNextStart) {
  StackOptions options;
  options.start_daemon = false;
  options.step_duration = "1s";  // an order takes about 4 s: still running at the stop
  Stack stack(options);
  const std::string bearer = token(stack);
  ASSERT_FALSE(bearer.empty());
  const json order = {{"orderId", "ORD-G"}, {"items", {{{"sku", "SKU-001"}, {"quantity", 1}}}}};
  auto accepted = submit(stack, bearer, "order", order);
  ASSERT_TRUE(accepted && accepted->status == 202) << (accepted ? accepted->body : "no answer");
  const std::string id = json::parse(accepted->body)["processId"];
  ASSERT_TRUE(wait_until(
      [&] { return status(stack, bearer, id).value("status", "") == "processing"; }, 10s));

  edit_config(stack, "[order]\n", "[process_types.shipping]\n[order]\n");
  EXPECT_EQ(stack.stop_server(), 0) << stack.server_log();
  stack.start_server();
  const json done = finished(stack, bearer, id);
  ASSERT_EQ(done.value("status", ""), "failed") << done.dump() << stack.server_log();
  EXPECT_EQ(done["error"].value("code", ""), "NO_HANDLER") << done.dump();
  EXPECT_FALSE(done.value("retryable", true)) << done.dump();
  auto refused = submit(stack, bearer, "order", order);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
}

// A new process type reaches every program of the scale-out by a reload of each: workers
// first (so that no accepted process meets a worker without its handler), then gateways.
// Before it, the gateways refuse the type; after it, either gateway takes it and a worker
// runs it with its command.
TEST(ServerReload, ScaleOutWorkersAndGatewaysReloadedTakeANewProcessType) {
  StackOptions options;
  options.scale_out = true;
  options.start_daemon = false;
  Stack stack(options);
  const std::string script = stack.dir().file("echo.sh");
  write_file(script, "#!/bin/sh\nread -r line\nprintf '{\"got\": %s}\\n' \"$line\"\n", 0755);
  auto added =
      stack.admin({"client", "add", "--tenant", "acme", "--process-types", "order,echo", "--json"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  const auto client = json::parse(added.out);
  httplib::Client http("127.0.0.1", stack.gateway_port(1));
  auto granted =
      http.Post("/oauth/token",
                "grant_type=client_credentials&client_id=" + client["clientId"].get<std::string>() +
                    "&client_secret=" + client["clientSecret"].get<std::string>(),
                "application/x-www-form-urlencoded");
  ASSERT_TRUE(granted && granted->status == 200);
  const httplib::Headers auth = {
      {"Authorization", "Bearer " + json::parse(granted->body)["access_token"].get<std::string>()}};
  const std::string echo = R"({"processType":"echo","clientProcessId":"e-1","data":{"n":7}})";
  auto refused = http.Post("/api/stargate/processes", auth, echo, "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;

  const std::string config = stack.dir().file("server.toml");
  write_file(config,
             read_file(config) +
                 "[process_types.order]\n[process_types.echo]\nhandler = \"exec\"\n"
                 "command = [\"" +
                 script + "\"]\n",
             0600);
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(sighup_and_see(*stack.worker(i),
                               stack.dir().file("worker" + std::to_string(i) + ".log"),
                               "reload: applied process types"))
        << stack.worker_log(i);
  }
  ASSERT_TRUE(sighup_and_see(*stack.gateway(0), stack.dir().file("server.log"),
                             "reload: applied process types"));
  ASSERT_TRUE(sighup_and_see(*stack.gateway(1), stack.dir().file("gateway1.log"),
                             "reload: applied process types"));

  for (int port : {stack.gateway_port(0), stack.gateway_port(1)}) {
    httplib::Client gateway("127.0.0.1", port);
    auto accepted = gateway.Post("/api/stargate/processes", auth,
                                 R"({"processType":"echo","clientProcessId":"e-)" +
                                     std::to_string(port) + R"(","data":{"n":7}})",
                                 "application/json");
    ASSERT_TRUE(accepted && accepted->status == 202) << (accepted ? accepted->body : "no answer");
    const std::string id = json::parse(accepted->body)["processId"];
    json view;
    ASSERT_TRUE(wait_until(
        [&] {
          auto res = gateway.Get("/api/stargate/processes/" + id, auth);
          if (!res || res->status != 200) return false;
          view = json::parse(res->body);
          return view.value("status", "") == "completed";
        },
        30s))
        << view.dump();
    EXPECT_EQ(view["result"]["got"]["processId"], id);
    EXPECT_EQ(view["result"]["got"]["data"], json({{"n", 7}}));
  }
}

// A self-signed certificate for 127.0.0.1 made with the openssl CLI, named `name`.
void make_certificate(const TempDir& dir, const std::string& name) {
  auto made = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                   dir.file(name + ".key"), "-out", dir.file(name + ".crt"), "-days", "2", "-subj",
                   "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ::chmod(dir.file(name + ".key").c_str(), 0600);
}

// The certificate renewed in place (same paths) and SIGHUP: new connections get the new one,
// a request held on a connection made before the swap is answered on it.
TEST(ServerReload, ATlsCertificateRenewedInPlaceIsServedToNewConnections) {
  TempDir certs;
  make_certificate(certs, "old");
  make_certificate(certs, "new");
  const std::string cert = certs.file("tls.crt"), key = certs.file("tls.key");
  write_file(cert, read_file(certs.file("old.crt")), 0644);
  write_file(key, read_file(certs.file("old.key")), 0600);
  StackOptions options;
  options.start_daemon = false;
  options.server_settings = "tls_cert = \"" + cert + "\"\ntls_key = \"" + key + "\"\n";
  Stack stack(options);
  const std::string base = "https://127.0.0.1:" + std::to_string(stack.port());
  const auto trusted_with = [&](const std::string& ca) {
    return run({"/usr/bin/curl", "-sS", "-o", "/dev/null", "--cacert", certs.file(ca + ".crt"),
                base + "/health/live"})
               .exit_code == 0;
  };
  ASSERT_TRUE(trusted_with("old"));
  ASSERT_FALSE(trusted_with("new"));

  // A feed request held for 6 s on a connection made with the old certificate.
  auto bearer = run({"/usr/bin/curl", "-sS", "--cacert", certs.file("old.crt"), "-d",
                     "grant_type=client_credentials&client_id=" + stack.client_id() +
                         "&client_secret=" + stack.client_secret(),
                     base + "/oauth/token"});
  ASSERT_EQ(bearer.exit_code, 0) << bearer.err;
  const std::string auth =
      "Authorization: Bearer " + json::parse(bearer.out)["access_token"].get<std::string>();
  auto head = run({"/usr/bin/curl", "-sS", "--cacert", certs.file("old.crt"), "-H", auth,
                   base + "/api/stargate/processes/changes"});
  ASSERT_EQ(head.exit_code, 0) << head.err;
  const std::string cursor = json::parse(head.out)["cursor"];
  Child held({"/usr/bin/curl", "-sS", "-w", "\\n%{http_code}\\n", "--cacert", certs.file("old.crt"),
              "-H", auth, base + "/api/stargate/processes/changes?wait=6s&cursor=" + cursor},
             {}, stack.dir().file("held.log"));
  std::this_thread::sleep_for(1s);  // connected, and waiting

  write_file(cert, read_file(certs.file("new.crt")), 0644);
  write_file(key, read_file(certs.file("new.key")), 0600);
  ASSERT_TRUE(reload_and_see(stack, "reload: applied TLS certificate")) << stack.server_log();
  EXPECT_TRUE(trusted_with("new"));
  EXPECT_FALSE(trusted_with("old"));
  ASSERT_TRUE(wait_until([&] { return !held.running(); }, 15s));
  EXPECT_EQ(held.stop(SIGTERM), 0) << read_file(stack.dir().file("held.log"));
  EXPECT_NE(read_file(stack.dir().file("held.log")).find("\n200\n"), std::string::npos)
      << read_file(stack.dir().file("held.log"));

  // A key others may read is refused; the certificate in use stays.
  ::chmod(key.c_str(), 0644);
  ASSERT_TRUE(reload_and_see(stack, "connections go on with the certificate they had"))
      << stack.server_log();
  EXPECT_TRUE(trusted_with("new"));
}

}  // namespace
}  // namespace stargate::test
