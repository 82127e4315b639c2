// Tests of daemon/config.cpp.
#include "daemon/config.hpp"

#include <gtest/gtest.h>

namespace stargate::daemon {
namespace {

using namespace std::chrono_literals;

constexpr const char* kMinimal = R"(
[gateway]
url = "https://gateway.example.com/"
[credentials]
client_id = "sgc_1"
client_secret_file = "/etc/stargate/client_secret"
)";

TEST(DaemonConfig, MinimalFileGetsTheSeedsDefaults) {
  auto config = parse_daemon_config(kMinimal, "stargated.toml");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->gateway.url, "https://gateway.example.com");
  EXPECT_EQ(config->gateway.token_url, "https://gateway.example.com/oauth/token");
  EXPECT_EQ(config->polling.fast_interval, 30s);
  EXPECT_EQ(config->polling.fast_phase, 2min);
  EXPECT_EQ(config->polling.slow_interval, 60s);
  EXPECT_EQ(config->polling.timeout, 10min);
  EXPECT_EQ(config->polling.backoff_initial, 5s);
  EXPECT_EQ(config->polling.alert_after, 5);
  EXPECT_EQ(config->queue.retry_max, 60s);
  EXPECT_EQ(config->socket.mode, 0660u);
  EXPECT_EQ(config->socket.max_connections, 256u);
  EXPECT_EQ(config->socket.max_connections_per_user, 64u);
  EXPECT_EQ(config->socket.header_timeout, 10s);
  EXPECT_EQ(config->timeout_for("order"), 10min);
  EXPECT_EQ(config->polling.mode, PollMode::kAuto);
  EXPECT_EQ(config->polling.feed_wait, 30s);
  EXPECT_EQ(config->polling.feed_interval, 1s);
}

TEST(DaemonConfig, PollingModes) {
  for (const auto& [text, mode] :
       std::vector<std::pair<std::string, PollMode>>{{"auto", PollMode::kAuto},
                                                     {"feed", PollMode::kFeed},
                                                     {"schedule", PollMode::kSchedule}}) {
    auto config = parse_daemon_config(
        std::string(kMinimal) + "[polling]\nmode = \"" + text + "\"\nfeed_wait = \"50s\"\n",
        "f.toml");
    ASSERT_TRUE(config) << config.error();
    EXPECT_EQ(config->polling.mode, mode);
    EXPECT_EQ(config->polling.feed_wait, 50s);
  }
  for (const std::string& bad :
       {std::string("mode = \"push\""), std::string("mode = 1"), std::string("feed_wait = \"6m\""),
        std::string("feed_interval = \"1ms\"")}) {
    auto config = parse_daemon_config(std::string(kMinimal) + "[polling]\n" + bad + "\n", "f.toml");
    EXPECT_FALSE(config) << bad;
  }
}

TEST(DaemonConfig, SocketLimits) {
  auto config = parse_daemon_config(std::string(kMinimal) + R"(
[socket]
max_connections = 32
max_connections_per_user = 4
header_timeout = "2s"
idle_timeout = "1m"
body_min_rate = 100
)",
                                    "stargated.toml");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->socket.max_connections, 32u);
  EXPECT_EQ(config->socket.max_connections_per_user, 4u);
  EXPECT_EQ(config->socket.header_timeout, 2s);
  EXPECT_EQ(config->socket.idle_timeout, 1min);
  EXPECT_EQ(config->socket.body_min_rate, 100u);
  EXPECT_FALSE(parse_daemon_config(std::string(kMinimal) + "[socket]\nmax_connections = 0\n",
                                   "stargated.toml"));
  EXPECT_FALSE(parse_daemon_config(std::string(kMinimal) + "[socket]\nheader_timeout = \"0s\"\n",
                                   "stargated.toml"));
}

TEST(DaemonConfig, ProcessTypes) {
  auto config = parse_daemon_config(std::string(kMinimal) + R"(
[process_types.order]
timeout = "20m"
on_complete = "/usr/local/bin/deliver"
[process_types.shipping]
)",
                                    "stargated.toml");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->timeout_for("order"), 20min);
  EXPECT_EQ(config->timeout_for("shipping"), 10min);
  EXPECT_EQ(config->process_types.at("order").on_complete, "/usr/local/bin/deliver");
}

TEST(DaemonConfig, ReportsAllProblemsWithLines) {
  auto config = parse_daemon_config(R"([gateway]
url = "ftp://x"
[polling]
fast_interval = "soon"
[socket]
mode = "rw"
[process_types."Bad Name"]
[unknown]
x = 1
)",
                                    "stargated.toml");
  ASSERT_FALSE(config);
  const auto& e = config.error();
  EXPECT_NE(e.find("stargated.toml:2: gateway.url: must start with https://"), std::string::npos)
      << e;
  EXPECT_NE(e.find("stargated.toml:4: polling.fast_interval: invalid duration 'soon'"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("stargated.toml:6: socket.mode"), std::string::npos) << e;
  EXPECT_NE(e.find("missing required key credentials.client_id"), std::string::npos) << e;
  EXPECT_NE(e.find("process_types.Bad Name"), std::string::npos) << e;
  EXPECT_NE(e.find("stargated.toml:9: unknown.x: unknown key"), std::string::npos) << e;
}

TEST(DaemonConfig, RefusesZeroIntervals) {
  auto config =
      parse_daemon_config(std::string(kMinimal) + "[polling]\nslow_interval = \"0s\"\n", "f.toml");
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find("must be at least 1ms"), std::string::npos) << config.error();
}

}  // namespace
}  // namespace stargate::daemon
