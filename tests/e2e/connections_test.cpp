// The gateway's connections under attack (issue 10), against the real stargate-server:
// slow headers and slow bodies (slowloris, R-U-Dead-Yet), silent connections, a chunked
// flood, request smuggling framings, and one address opening too many connections. Each
// test checks that a normal client is answered while the attack goes on, and how the
// server ended the attacker's connections.
#include <sys/resource.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "tests/support/raw_socket.hpp"
#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Deadlines short enough for a test; the defaults are ten times longer.
constexpr const char* kShortDeadlines =
    "header_timeout = \"1s\"\nidle_timeout = \"1s\"\nbody_timeout = \"1s\"\n"
    "body_min_rate = 1024\nmax_connections_per_address = 2000\n";

StackOptions server_only(const std::string& settings = kShortDeadlines) {
  StackOptions options;
  options.start_daemon = false;
  options.server_settings = settings;
  return options;
}

// A normal client's GET /health/live, given a few seconds: unfixed, it waited for the
// attackers to stop (30 s and more).
bool live(int port, const std::string& source = "127.0.0.1") {
  auto connection = RawConnection::tcp(port, source);
  if (!connection.ok()) return false;
  connection.send("GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  return connection.read_until_closed(3s).rfind("HTTP/1.1 200 OK\r\n", 0) == 0;
}

// More descriptors for the test process than the usual 1,024, when the hard limit allows.
void raise_fd_limit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

std::size_t server_threads(Stack& stack) {
  return proc_status(stack.server()->pid(), "Threads");
}

std::size_t server_rss_kib(Stack& stack) {
  return proc_status(stack.server()->pid(), "VmRSS");
}

TEST(Connections, SlowHeadersHoldNoThreadAndEndAtTheHeadDeadline) {
  Stack stack(server_only());
  const std::size_t threads_before = server_threads(stack);
  std::vector<RawConnection> slow;
  for (int i = 0; i < 300; ++i) {
    slow.push_back(RawConnection::tcp(stack.port()));
    ASSERT_TRUE(slow.back().ok());
    slow.back().send("GET /health/live HTTP/1.1\r\nHost: localhost\r\n");
  }
  // One header line every 300 ms each: with a timeout that every byte restarts, these
  // connections would be held for as long as the attacker likes.
  for (int round = 0; round < 4; ++round) {
    std::this_thread::sleep_for(300ms);
    for (auto& connection : slow)
      connection.send("X-Slow: " + std::to_string(round) + "\r\n");
    EXPECT_TRUE(live(stack.port())) << "round " << round;
  }
  EXPECT_EQ(server_threads(stack), threads_before);
  for (auto& connection : slow) {
    const auto answer = connection.read_until_closed(5s);
    EXPECT_TRUE(connection.closed());
    EXPECT_EQ(answer.rfind("HTTP/1.1 408 Request Timeout\r\n", 0), 0u) << answer;
  }
  EXPECT_TRUE(live(stack.port()));
}

TEST(Connections, ASlowBodyEndsAtADeadlineProportionalToItsSize) {
  Stack stack(server_only());
  std::vector<RawConnection> slow;
  for (int i = 0; i < 100; ++i) {
    slow.push_back(RawConnection::tcp(stack.port()));
    slow.back().send(
        "POST /oauth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
        "application/x-www-form-urlencoded\r\nContent-Length: 2048\r\n\r\ngrant_type=");
  }
  // 2048 bytes at 1024 bytes/s at least: 1 s + 2 s from the end of the head.
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(400ms);
    for (auto& connection : slow)
      connection.send("a");
    EXPECT_TRUE(live(stack.port())) << "round " << round;
  }
  for (auto& connection : slow) {
    const auto answer = connection.read_until_closed(5s);
    EXPECT_TRUE(connection.closed());
    EXPECT_EQ(answer.rfind("HTTP/1.1 408 Request Timeout\r\n", 0), 0u) << answer;
    EXPECT_NE(answer.find("\"error\":\"INVALID_REQUEST\""), std::string::npos) << answer;
  }
}

TEST(Connections, AThousandSilentConnectionsCostNoThread) {
  raise_fd_limit();
  Stack stack(server_only());
  const std::size_t threads_before = server_threads(stack);
  std::vector<RawConnection> silent;
  for (int i = 0; i < 1000; ++i) {
    silent.push_back(RawConnection::tcp(stack.port()));
    ASSERT_TRUE(silent.back().ok()) << i;
  }
  for (int round = 0; round < 5; ++round) {
    EXPECT_TRUE(live(stack.port())) << "round " << round;
    std::this_thread::sleep_for(500ms);
  }
  EXPECT_EQ(server_threads(stack), threads_before);
  // Handed over by the kernel after the deferral, then closed when no head arrives.
  std::size_t closed = 0;
  for (auto& connection : silent) {
    connection.read_until_closed(6s);
    closed += connection.closed() ? 1 : 0;
  }
  EXPECT_EQ(closed, silent.size());
}

TEST(Connections, AChunkedFloodIsCutOffAtTheBodyLimit) {
  Stack stack(server_only(std::string(kShortDeadlines) + "max_body_bytes = 65536\n"));
  const std::size_t rss_before = server_rss_kib(stack);
  std::vector<std::thread> floods;
  std::atomic<int> refused{0};
  for (int i = 0; i < 4; ++i) {
    floods.emplace_back([&] {
      auto connection = RawConnection::tcp(stack.port());
      connection.send(
          "POST /api/stargate/processes/x HTTP/1.1\r\nHost: localhost\r\n"
          "Transfer-Encoding: chunked\r\n\r\n");
      const std::string chunk = "10000\r\n" + std::string(0x10000, 'a') + "\r\n";
      // 50 MiB offered to a path that needs no body at all; the server stops reading at
      // 64 KiB. Bounded: 800 chunks at most.
      for (int n = 0; n < 800 && connection.send(chunk); ++n) {
      }
      const auto answer = connection.read_until_closed(5s);
      if (answer.rfind("HTTP/1.1 413", 0) == 0) ++refused;
    });
  }
  for (auto& flood : floods)
    flood.join();
  EXPECT_EQ(refused, 4);
  EXPECT_TRUE(live(stack.port()));
  // Unfixed, each flood was read whole (200 MiB took the server from 338 to 805 MB).
  EXPECT_LT(server_rss_kib(stack), rss_before + 64 * 1024);
}

TEST(Connections, FramingsThatCouldSmuggleARequestAreRefusedAndClosed) {
  Stack stack(server_only());
  const std::pair<std::string, std::string> cases[] = {
      {"Content-Length: 5\r\nContent-Length: 40\r\n", "400"},
      {"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n", "400"},
      {"Transfer-Encoding: chunked, identity\r\n", "501"},
      {"Transfer-Encoding: xchunked\r\n", "501"},
      {"Host: second\r\nContent-Length: 5\r\n", "400"},
      {"Content-Length: 5\r\n folded: line\r\n", "400"},
  };
  for (const auto& [headers, status] : cases) {
    auto connection = RawConnection::tcp(stack.port());
    // What follows the first request would be a second one to a reader who framed it the
    // other way: it must never be answered.
    connection.send("POST /api/stargate/processes HTTP/1.1\r\nHost: localhost\r\n" + headers +
                    "\r\nhello" + "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n");
    const auto answer = connection.read_until_closed(5s);
    EXPECT_EQ(answer.rfind("HTTP/1.1 " + status, 0), 0u) << headers << answer;
    EXPECT_EQ(answer.find("\"status\":\"ok\""), std::string::npos) << headers << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
    EXPECT_TRUE(connection.closed()) << headers;
  }
  // A request with no Host is not served either (RFC 9112 §3.2).
  auto hostless = RawConnection::tcp(stack.port());
  hostless.send("GET /health/live HTTP/1.1\r\n\r\n");
  EXPECT_EQ(hostless.read_until_closed(5s).rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_TRUE(live(stack.port()));
}

TEST(Connections, PipelinedAndContinuedRequestsAreServedInOrder) {
  Stack stack(server_only());
  auto connection = RawConnection::tcp(stack.port());
  connection.send(
      "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"
      "GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n"
      "POST /oauth/token HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
      "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 20\r\n\r\n");
  const auto first = connection.read_until("100 Continue\r\n\r\n", 5s);
  ASSERT_NE(first.find("HTTP/1.1 100 Continue\r\n\r\n"), std::string::npos) << first;
  connection.send("grant_type=password&");
  connection.send("GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  const auto all = first + connection.read_until_closed(5s);
  const auto ok = all.find("HTTP/1.1 200 OK");
  const auto missing = all.find("HTTP/1.1 404 Not Found");
  const auto grant = all.find("unsupported_grant_type");
  const auto last = all.rfind("HTTP/1.1 200 OK");
  ASSERT_NE(ok, std::string::npos) << all;
  ASSERT_NE(missing, std::string::npos) << all;
  ASSERT_NE(grant, std::string::npos) << all;
  EXPECT_LT(ok, missing);
  EXPECT_LT(missing, grant);
  EXPECT_LT(grant, last);
  EXPECT_EQ(all.find("100 Continue", all.find("100 Continue") + 1), std::string::npos) << all;
}

// A client that closes its sending side right after its requests (as `nc` and scripts
// do) still gets every answer, then the end of the stream.
TEST(Connections, AHalfClosedClientIsAnsweredThenClosed) {
  Stack stack(server_only());
  auto connection = RawConnection::tcp(stack.port());
  connection.send(
      "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"
      "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n");
  connection.finish_sending();
  const auto answers = connection.read_until_closed(5s);
  EXPECT_TRUE(connection.closed());
  const auto first = answers.find("HTTP/1.1 200 OK");
  ASSERT_NE(first, std::string::npos) << answers;
  EXPECT_NE(answers.find("HTTP/1.1 200 OK", first + 1), std::string::npos) << answers;
  // Half a request, then the end: nothing to answer, and nothing hangs.
  auto partial = RawConnection::tcp(stack.port());
  partial.send("GET /health/live HTTP/1.1\r\nHost: loc");
  partial.finish_sending();
  EXPECT_EQ(partial.read_until_closed(5s), "");
  EXPECT_TRUE(partial.closed());
  EXPECT_TRUE(live(stack.port()));
}

// Out of descriptors (its limit lowered under it), the server pauses accepting instead of
// retrying at once, says so at most every 10 s, and serves again once descriptors free up.
TEST(Connections, OutOfDescriptorsTheServerPausesAndRecovers) {
  raise_fd_limit();
  Stack stack(server_only());
  TightDescriptorLimit tight(stack.server()->pid(), 8);
  if (!tight.applied()) {
    GTEST_SKIP() << "cannot lower the server's descriptor limit here: " << tight.error();
  }
  std::vector<RawConnection> flood;
  for (int i = 0; i < 100; ++i) {
    flood.push_back(RawConnection::tcp(stack.port()));
    flood.back().send("GET /health/live HTTP/1.1\r\nHost: localhost\r\n");
  }
  ASSERT_TRUE(wait_until(
      [&] { return stack.server_log().find("pausing accepts") != std::string::npos; }, 10s))
      << stack.server_log();
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(count(stack.server_log(), "pausing accepts"), 1u);
  ASSERT_TRUE(stack.server()->running());
  flood.clear();
  ASSERT_TRUE(tight.restore());
  EXPECT_TRUE(wait_until([&] { return live(stack.port()); }, 10s)) << stack.server_log();
}

TEST(Connections, OneAddressCannotTakeEveryConnection) {
  Stack stack(server_only("header_timeout = \"5s\"\nmax_connections_per_address = 20\n"));
  std::vector<RawConnection> held;
  for (int i = 0; i < 20; ++i) {
    held.push_back(RawConnection::tcp(stack.port()));
    held.back().send("GET / HTTP/1.1\r\n");  // a head that never ends
  }
  std::this_thread::sleep_for(200ms);
  auto refused = RawConnection::tcp(stack.port());
  refused.send("GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n");
  const auto answer = refused.read_until_closed(5s);
  EXPECT_EQ(answer.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("Retry-After: 1\r\n"), std::string::npos);
  // Another address is served, and so is this one once its connections end.
  EXPECT_TRUE(live(stack.port(), "127.0.0.2"));
  held.clear();
  EXPECT_TRUE(wait_until([&] { return live(stack.port()); }, 5s));
  httplib::Client http("127.0.0.1", stack.port());
  const auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(
      metrics->body.find("stargate_http_connection_events_total{event=\"per_address_limit\"}"),
      std::string::npos)
      << metrics->body;
}

}  // namespace
}  // namespace stargate::test
