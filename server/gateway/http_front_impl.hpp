// The connection front's insides, shared by its two halves: http_front.cpp (listening,
// the registry of connections, the worker threads and the sweeper) and
// http_connection.cpp (one connection's life: TLS, reading, framing, running its
// requests, writing its answers). Not for use outside them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <openssl/ssl.h>

#include "server/gateway/http_framing.hpp"
#include "server/gateway/http_front.hpp"
#include "shared/errors.hpp"

namespace stargate::server {

struct HttpFront::Impl {
  using Clock = std::chrono::steady_clock;

  // What a connection is doing. While a thread works on it (reading, running its request,
  // writing) it holds the connection's mutex; the sweeper skips connections it cannot lock,
  // so a request being run never times out here.
  enum class Phase { kHandshake, kIdle, kHead, kBody, kWriting, kClosing };

  struct Connection {
    std::mutex mutex;
    bool closed = false;
    int fd = -1;
    std::uint64_t serial = 0;  // the epoll key: never reused, unlike descriptors
    SSL* ssl = nullptr;
    std::string ip;
    int port = 0;
    std::string local_ip;
    int local_port = 0;
    Phase phase = Phase::kHead;
    Clock::time_point deadline;
    Clock::time_point body_started;
    std::string in;
    std::string out;
    std::size_t out_sent = 0;
    bool close_after_write = false;
    bool ssl_read_wants_write = false;
    bool ssl_write_wants_read = false;
    bool handshake_wants_write = false;
    bool peer_done = false;  // the client closed its side: answer what it sent, then close
    bool registered = false;
    RequestHead head;
    std::optional<ChunkedScanner> chunked;
    std::size_t served = 0;

    ~Connection() {
      if (ssl != nullptr) SSL_free(ssl);
    }
  };
  using Ptr = std::shared_ptr<Connection>;

  static constexpr std::uint64_t kListenKey = 0;
  static constexpr std::uint64_t kWakeKey = 1;

  FrontLimits limits;
  FrontHandler handler;
  const bool uses_tls;
  std::mutex tls_mutex;  // guards tls: a reload swaps it while connections are accepted
  SSL_CTX* tls;
  int listen_fd = -1;
  int epoll_fd = -1;
  int wake_fd = -1;
  std::atomic<bool> stopping{false};
  std::mutex stop_mutex;
  std::condition_variable stop_requested;
  std::vector<std::thread> workers;

  // The registry: every open connection by serial, and how many each address holds.
  // Lock order: a connection's mutex, then the registry's; whoever holds the registry only
  // ever try_lock()s a connection.
  std::mutex registry_mutex;
  std::unordered_map<std::uint64_t, Ptr> connections;
  std::unordered_map<std::string, std::size_t> per_address;
  std::uint64_t next_serial = 2;

  std::atomic<bool> accept_paused{false};
  std::atomic<std::int64_t> last_pause_log_ms{-1'000'000};
  Clock::time_point accept_resume;  // sweeper only
  Clock::time_point next_summary;   // sweeper only
  std::uint64_t summarised[static_cast<int>(FrontEvent::kCount)] = {};
  std::atomic<std::uint64_t> events[static_cast<int>(FrontEvent::kCount)] = {};
  std::atomic<std::uint64_t> accepted{0};
  mutable std::mutex stats_mutex;
  FrontStats snapshot;

  Impl(FrontLimits l, FrontHandler h, SSL_CTX* t);
  ~Impl();

  void count(FrontEvent event) { ++events[static_cast<int>(event)]; }

  void wake();

  // ---- listening and the registry (http_front.cpp) ----

  Expected<int> bind(const std::string& host, int port);
  void arm_listener(bool add);
  bool accept_some();
  std::size_t open_connections();
  void refuse(int fd, int status, const std::string& message, bool retry_after);
  std::size_t close_idle(std::size_t wanted);
  std::vector<Ptr> snapshot_connections();

  // ---- one connection (http_connection.cpp; each function: its mutex held) ----

  void close(Connection& connection);
  void arm(Connection& connection);
  ssize_t read_some(Connection& connection, char* buffer, std::size_t size);
  ssize_t write_some(Connection& connection, const char* data, std::size_t size);
  void on_ready(Connection& connection, bool readable);
  bool handshake(Connection& connection);
  bool receive(Connection& connection);
  bool advance(Connection& connection);
  Duration body_deadline(std::uint64_t bytes) const;
  bool run(Connection& connection, std::size_t length);
  void answer_and_close(Connection& connection, int status, const std::string& message,
                        bool retry_after);
  bool flush(Connection& connection);
  void linger(Connection& connection);

  // ---- threads (http_front.cpp) ----

  void work();
  void sweep(Clock::time_point now);
  void summarise(Clock::time_point now);
  void stop_workers();
  void close_all();
  void serve();
};

}  // namespace stargate::server
