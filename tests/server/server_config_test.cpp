// Tests of server/app/server_config.cpp.
#include "server/app/server_config.hpp"

#include <gtest/gtest.h>

#include "server/app/backends.hpp"
#include "server/store/sqlite/sqlite_store.hpp"
#include "tests/support/process.hpp"

namespace stargate::server {
namespace {

TEST(ServerConfig, DefaultsWithoutAFile) {
  auto config = load_server_config("");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->listen_port, 8080);
  EXPECT_EQ(config->process_types.count("order"), 1u);
  EXPECT_EQ(config->token_lifetime, std::chrono::hours(1));
  EXPECT_EQ(config->stuck_after, std::chrono::minutes(15));
  EXPECT_EQ(config->max_queue_wait, std::chrono::minutes(5));
}

TEST(ServerConfig, ReadsAFileAndResolvesPaths) {
  test::TempDir dir;
  test::write_file(dir.file("server.toml"), R"(
[server]
listen = "[::1]:0"
state_dir = ")" + dir.path() + R"("
header_timeout = "3s"
max_connections_per_address = 7
max_body_bytes = 4096
[engine]
workers = 4
stuck_after = "20m"
max_queue_wait = "30s"
[order]
step_duration = "50ms"
[order.stock]
SKU-001 = 3
[process_types.order]
expected_duration = "5m"
)");
  auto config = load_server_config(dir.file("server.toml"));
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->listen_host, "::1");
  EXPECT_EQ(config->listen_port, 0);
  EXPECT_EQ(config->workers, 4u);
  EXPECT_EQ(config->stuck_after, std::chrono::minutes(20));
  EXPECT_EQ(config->http.header_timeout, std::chrono::seconds(3));
  EXPECT_EQ(config->http.max_connections_per_address, 7u);
  EXPECT_EQ(config->http.framing.max_body_bytes, 4096u);
  EXPECT_EQ(config->http.idle_timeout, std::chrono::seconds(5));
  EXPECT_EQ(config->max_queue_wait, std::chrono::seconds(30));
  EXPECT_EQ(config->store_path, dir.file("stargate-server.db"));
  EXPECT_EQ(config->order.stock.at("SKU-001"), 3);
  EXPECT_EQ(config->process_types.at("order").expected_duration, std::chrono::minutes(5));
}

// Up to 1024 engine workers: enough for as many waiting handlers as a node runs at once.
TEST(ServerConfig, EngineWorkersAreBounded) {
  test::TempDir dir;
  test::write_file(dir.file("server.toml"), "[engine]\nworkers = 1024\n");
  auto most = load_server_config(dir.file("server.toml"));
  ASSERT_TRUE(most) << most.error();
  EXPECT_EQ(most->workers, 1024u);
  test::write_file(dir.file("server.toml"), "[engine]\nworkers = 1025\n");
  auto over = load_server_config(dir.file("server.toml"));
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().find(":2: engine.workers"), std::string::npos) << over.error();
}

TEST(ServerConfig, ReportsEveryProblem) {
  test::TempDir dir;
  test::write_file(dir.file("server.toml"),
                   "[server]\nlisten = \"nowhere\"\n[engine]\nworkers = 0\nthreads = 2\n"
                   "[process_types.order]\nhandler = \"magic\"\n[order.stock]\nSKU-1 = -5\n"
                   "SKU-2 = \"many\"\n");
  auto config = load_server_config(dir.file("server.toml"));
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find(":2: server.listen"), std::string::npos) << config.error();
  EXPECT_NE(config.error().find(":4: engine.workers"), std::string::npos);
  EXPECT_NE(config.error().find(":5: engine.threads: unknown key"), std::string::npos);
  EXPECT_NE(config.error().find(":7: process_types.order.handler"), std::string::npos);
  EXPECT_NE(config.error().find(":9: order.stock.SKU-1: a SKU of 1-128 characters with 0 to"),
            std::string::npos)
      << config.error();
  EXPECT_NE(config.error().find(":10: order.stock.SKU-2: expected an integer"), std::string::npos);
}

// The handler table is the one list of names: the configuration takes each of them (and
// names them all when it refuses one), and a handler is made for each type.
TEST(ServerConfig, TakesEveryHandlerOfTheTableAndNoOther) {
  std::string text;
  for (const auto& kind : handler_kinds()) {
    text += "[process_types.t-" + std::string(kind.name) + "]\nhandler = \"" +
            std::string(kind.name) + "\"\n";
    if (kind.runs_command) text += "command = [\"/bin/true\"]\n";
  }
  auto config = parse_server_config(text, "server.toml");
  ASSERT_TRUE(config) << config.error();
  ASSERT_EQ(config->process_types.size(), handler_kinds().size());
  test::TempDir dir;
  auto store = SqliteStore::open(dir.file("store.db"));
  ASSERT_TRUE(store) << store.error();
  const auto handlers =
      make_handlers(config->process_types, {config->order, config->shipping, **store});
  EXPECT_EQ(handlers.size(), handler_kinds().size());

  auto refused = parse_server_config("[process_types.x]\nhandler = \"magic\"\n", "server.toml");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("unknown handler 'magic' (order, shipping or exec)"),
            std::string::npos)
      << refused.error();
  EXPECT_EQ(find_handler_kind("magic"), nullptr);
}

TEST(ServerConfig, LogLevelIsOneSpdlogKnows) {
  EXPECT_EQ(parse_server_config("", "server.toml")->log_level, "");
  EXPECT_EQ(parse_server_config("[log]\nlevel = \"debug\"\n", "server.toml")->log_level, "debug");
  for (const char* bad : {"\"loud\"", "\"\"", "3", "\"debug\\n\""}) {
    auto refused = parse_server_config(std::string("[log]\nlevel = ") + bad + "\n", "server.toml");
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().find("log.level"), std::string::npos) << refused.error();
  }
}

// What a reload cannot apply is named; what it applies (rate limits, log level, TLS files of
// a server that has TLS, process types with [order] and [shipping]) is not.
TEST(ServerConfig, NamesTheChangesThatNeedARestart) {
  const auto was = *parse_server_config("[server]\nlisten = \"127.0.0.1:8080\"\n", "server.toml");
  EXPECT_TRUE(changes_needing_restart(was, was).empty());
  auto now = was;
  now.rate_limit.per_minute = 1;
  now.tenant_rate_limits["acme"] = {5, 5};
  now.log_level = "debug";
  now.process_types["order"].expected_duration = std::chrono::minutes(1);
  now.process_types["echo"] = {"exec", std::chrono::seconds(5), {"/bin/cat"}};
  now.order.stock["SKU-1"] = 7;
  now.shipping.carrier = "Other";
  EXPECT_TRUE(changes_needing_restart(was, now).empty());
  now.listen_port = 9090;
  now.workers = 9;
  now.http.threads = 3;
  EXPECT_EQ(changes_needing_restart(was, now),
            (std::vector<std::string>{"[server] listen", "[http] and request limits", "[engine]"}));
  auto tls = was;
  tls.tls_cert = "/etc/cert.pem";
  EXPECT_EQ(changes_needing_restart(was, tls), (std::vector<std::string>{"TLS on or off"}));
  // Another [redis] prefix is another set of keys: a reload cannot move to it.
  auto prefix = was;
  prefix.redis_prefix = "east";
  EXPECT_EQ(changes_needing_restart(was, prefix),
            (std::vector<std::string>{"[store], [redis], [mongo]"}));
}

TEST(ServerConfig, ListenAddresses) {
  EXPECT_EQ(*parse_listen_address("127.0.0.1:8080"),
            (std::pair<std::string, int>{"127.0.0.1", 8080}));
  EXPECT_EQ(*parse_listen_address("[::1]:443"), (std::pair<std::string, int>{"::1", 443}));
  for (const char* bad : {"", "8080", ":80", "host:", "host:99999", "host:-1", "[::1]80", "h:8o"}) {
    EXPECT_FALSE(parse_listen_address(bad)) << bad;
  }
}

}  // namespace
}  // namespace stargate::server

namespace stargate::server {
namespace {

TEST(ServerConfig, ScaleOutBackendKeys) {
  auto config = parse_server_config(
      "[store]\nbackend = \"redis+mongo\"\n[redis]\nurl = \"redis://10.0.0.5:6380/2\"\n"
      "password_file = \"/etc/stargate-server/redis.pw\"\n[mongo]\n"
      "uri = \"mongodb://stargate@db1,db2/sg?replicaSet=rs0\"\n[engine]\nlease = \"45s\"\n",
      "server.toml");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->store_backend, "redis+mongo");
  EXPECT_EQ(config->redis_url, "redis://10.0.0.5:6380/2");
  EXPECT_EQ(config->redis_password_file, "/etc/stargate-server/redis.pw");
  EXPECT_EQ(config->redis_prefix, "stargate");
  EXPECT_EQ(config->mongo_uri, "mongodb://stargate@db1,db2/sg?replicaSet=rs0");
  EXPECT_EQ(config->lease, std::chrono::seconds(45));
  auto defaults = parse_server_config("", "server.toml");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->store_backend, "sqlite");
  auto prefixed =
      parse_server_config("[redis]\nprefix = \"eu-west.stargate:prod_2\"\n", "server.toml");
  ASSERT_TRUE(prefixed) << prefixed.error();
  EXPECT_EQ(prefixed->redis_prefix, "eu-west.stargate:prod_2");
}

// Passwords never sit in server.toml, and a backend that is not there is named.
TEST(ServerConfig, ScaleOutKeysRefuseBadValuesAndPasswords) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[store]\nbackend = \"postgres\"\n", "store.backend: expected \"sqlite\" or"},
      {"[redis]\nurl = \"redis://:hunter2@cache:6379\"\n", "redis.url: a password does not"},
      {"[redis]\nurl = \"http://cache\"\n", "redis.url: expected redis://"},
      {"[redis]\nurl = \"redis://cache:99999\"\n", "redis.url: the port"},
      {"[redis]\nurl = \"redis://cache/x\"\n", "redis.url: the database"},
      {"[redis]\nprefix = \"\"\n", "redis.prefix: expected 1 to 64 letters"},
      {"[redis]\nprefix = \"prod east\"\n", "redis.prefix: expected 1 to 64 letters"},
      {"[redis]\nprefix = \"a*\"\n", "redis.prefix: expected 1 to 64 letters"},
      {"[redis]\nprefix = \"\u00e9t\u00e9\"\n", "redis.prefix: expected 1 to 64 letters"},
      {"[redis]\nprefix = \"" + std::string(65, 'p') + "\"\n", "redis.prefix: expected 1 to 64"},
      {"[redis]\nprefix = 7\n", "redis.prefix"},
      {"[mongo]\nuri = \"mongodb://sg:hunter2@db/sg\"\n", "mongo.uri: a password does not"},
      {"[mongo]\nuri = \"postgres://db\"\n", "mongo.uri: expected mongodb://"},
      {"[engine]\nlease = \"1s\"\n", "engine.lease"},
  };
  for (const auto& [text, expected] : cases) {
    auto config = parse_server_config(text, "server.toml");
    ASSERT_FALSE(config) << text;
    EXPECT_NE(config.error().find(expected), std::string::npos) << config.error();
    EXPECT_EQ(config.error().find("hunter2"), std::string::npos) << config.error();
  }
}

// audit verify and export wait long for MongoDB's replies: the option goes where the
// connection string's options go, and one the operator set is kept.
TEST(ServerConfig, AuditCommandsSetALongReplyTimeoutUnlessTheUriHasOne) {
  EXPECT_EQ(mongo_uri_with_reply_timeout("mongodb://db1:27017/stargate", 60000),
            "mongodb://db1:27017/stargate?socketTimeoutMS=60000");
  EXPECT_EQ(mongo_uri_with_reply_timeout("mongodb://db1:27017", 60000),
            "mongodb://db1:27017/?socketTimeoutMS=60000");
  EXPECT_EQ(mongo_uri_with_reply_timeout("mongodb://a,b,c/stargate?replicaSet=rs0", 60000),
            "mongodb://a,b,c/stargate?replicaSet=rs0&socketTimeoutMS=60000");
  EXPECT_EQ(mongo_uri_with_reply_timeout("mongodb://db1/?SocketTimeoutMS=5", 60000),
            "mongodb://db1/?SocketTimeoutMS=5");
}

}  // namespace
}  // namespace stargate::server
