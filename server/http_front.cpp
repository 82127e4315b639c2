// The connection front: worker threads that share one epoll set of non-blocking sockets.
#include "server/http_front.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "shared/clock.hpp"
#include "shared/errors.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"
#include "shared/resources.hpp"

namespace stargate::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kSweepInterval = std::chrono::milliseconds(250);
constexpr auto kSummaryInterval = std::chrono::seconds(10);
constexpr auto kAcceptPause = std::chrono::milliseconds(250);
constexpr auto kLingerTime = std::chrono::seconds(2);  // reading what follows a refusal
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr int kAcceptBatch = 64;
constexpr std::size_t kFdReserve = 64;  // descriptors kept for the store, logs, handlers

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

ErrorCode code_for(int status) {
  switch (status) {
    case 413:
      return ErrorCode::kPayloadTooLarge;
    case 429:
      return ErrorCode::kRateLimitExceeded;
    case 500:
      return ErrorCode::kInternalError;
    case 503:
      return ErrorCode::kServiceUnavailable;
    default:
      return ErrorCode::kInvalidRequest;
  }
}

// An answer the front makes itself, with the gateway's error body; it always closes.
std::string canned_response(int status, const std::string& message, bool retry_after) {
  const std::string id = new_uuid();
  ApiError error{code_for(status), message, std::nullopt};
  if (retry_after) error.retry_after_seconds = 1;
  const std::string body = dump_json(error_body(error, format_timestamp(now_utc()), id));
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\nX-Correlation-ID: " + id + "\r\n";
  if (retry_after) head += "Retry-After: 1\r\n";
  return head + "\r\n" + body;
}

std::pair<std::string, int> address_of(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    port = ntohs(v4.sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    port = ntohs(v6.sin6_port);
  }
  return {text, port};
}

// Enough descriptors for max_connections: the soft limit is raised to the hard one, and the
// cap lowered to what that allows.
std::size_t usable_connections(std::size_t wanted) {
  const std::uint64_t limit = raise_open_file_limit();
  const std::uint64_t available = limit > kFdReserve * 2 ? limit - kFdReserve : 16;
  if (wanted > available) {
    spdlog::warn("http: max_connections lowered from {} to {} (open file limit {})", wanted,
                 available, limit);
    return static_cast<std::size_t>(available);
  }
  return wanted;
}

}  // namespace

const char* front_event_name(FrontEvent event) {
  switch (event) {
    case FrontEvent::kHeaderTimeout:
      return "header_timeout";
    case FrontEvent::kBodyTimeout:
      return "body_timeout";
    case FrontEvent::kIdleTimeout:
      return "idle_timeout";
    case FrontEvent::kWriteTimeout:
      return "write_timeout";
    case FrontEvent::kBadRequest:
      return "bad_request";
    case FrontEvent::kPerAddress:
      return "per_address_limit";
    case FrontEvent::kConnectionCap:
      return "connection_limit";
    case FrontEvent::kTlsFailed:
      return "tls_failed";
    case FrontEvent::kAcceptPaused:
      return "accept_paused";
    case FrontEvent::kCount:
      break;
  }
  return "other";
}

struct HttpFront::Impl {
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

  Impl(FrontLimits l, FrontHandler h, SSL_CTX* t)
      : limits(std::move(l)), handler(std::move(h)), tls(t) {
    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event event{};
    event.events = EPOLLIN;  // level-triggered: every worker sees the stop
    event.data.u64 = kWakeKey;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &event);
  }

  ~Impl() {
    stop_workers();
    close_all();
    if (listen_fd >= 0) ::close(listen_fd);
    if (wake_fd >= 0) ::close(wake_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
  }

  void count(FrontEvent event) { ++events[static_cast<int>(event)]; }

  // Stops the workers (their epoll_wait returns) and the sweeper.
  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wake_fd, &one, sizeof one);
    std::lock_guard lock(stop_mutex);
    stop_requested.notify_all();
  }

  // ---- listening ----

  Expected<int> bind(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
      return fail("cannot listen on " + host + ": " + ::gai_strerror(rc));
    }
    std::string last_error = "no address";
    for (addrinfo* candidate = found; candidate != nullptr; candidate = candidate->ai_next) {
      const int fd =
          ::socket(candidate->ai_family, candidate->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   candidate->ai_protocol);
      if (fd < 0) continue;
      const int yes = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      if (candidate->ai_family == AF_INET6) {
        const int no = 0;
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
      }
      if (::bind(fd, candidate->ai_addr, candidate->ai_addrlen) == 0 &&
          ::listen(fd, SOMAXCONN) == 0) {
        // Connections are handed over only once they have sent something: a connection
        // opened and left silent costs nothing until then.
        const int defer_seconds = static_cast<int>(
            std::chrono::duration_cast<std::chrono::seconds>(limits.header_timeout).count());
        ::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds);
        listen_fd = fd;
        break;
      }
      last_error = std::strerror(errno);
      ::close(fd);
    }
    ::freeaddrinfo(found);
    if (listen_fd < 0) {
      return fail("cannot listen on " + host + ":" + std::to_string(port) + ": " + last_error);
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &length);
    limits.max_connections = usable_connections(limits.max_connections);
    return address_of(bound).second;
  }

  // The listener is one-shot too: one worker accepts a batch, then arms it again.
  void arm_listener(bool add) {
    epoll_event event{};
    event.events = EPOLLIN | EPOLLONESHOT;
    event.data.u64 = kListenKey;
    ::epoll_ctl(epoll_fd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, listen_fd, &event);
  }

  // Accepts what waits; false when accepting must pause (the sweeper arms it again).
  bool accept_some() {
    for (int i = 0; i < kAcceptBatch; ++i) {
      sockaddr_storage peer{};
      socklen_t length = sizeof peer;
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &length,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Accepting again at once would fail again at once (a busy loop): leave the
          // listener unarmed for a moment, and close idle connections to free descriptors.
          count(FrontEvent::kAcceptPaused);
          accept_paused = true;
          const auto now_ms =
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
                  .count();
          if (now_ms - last_pause_log_ms.exchange(now_ms) > 10'000) {
            spdlog::warn("http: cannot accept ({}) with {} connections open; pausing accepts",
                         std::strerror(errno), open_connections());
          }
          close_idle(open_connections() / 10 + 1);
          return false;
        }
        return true;
      }
      ++accepted;
      auto [ip, port] = address_of(peer);
      if (open_connections() >= limits.max_connections && close_idle(1) == 0) {
        count(FrontEvent::kConnectionCap);
        refuse(fd, 503, "Too many connections", false);
        continue;
      }
      const int yes = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
      auto connection = std::make_shared<Connection>();
      connection->fd = fd;
      connection->ip = std::move(ip);
      connection->port = port;
      sockaddr_storage local{};
      length = sizeof local;
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
        std::tie(connection->local_ip, connection->local_port) = address_of(local);
      }
      // The first head must arrive within header_timeout of the connection being handed
      // over (it has sent at least one byte by then, see TCP_DEFER_ACCEPT).
      connection->deadline = Clock::now() + limits.header_timeout;
      if (tls != nullptr) {
        connection->ssl = SSL_new(tls);
        if (connection->ssl == nullptr || SSL_set_fd(connection->ssl, fd) != 1) {
          count(FrontEvent::kTlsFailed);
          ::close(fd);
          continue;
        }
        SSL_set_accept_state(connection->ssl);
        connection->phase = Phase::kHandshake;
      }
      {
        std::lock_guard registry(registry_mutex);
        auto& held = per_address[connection->ip];
        if (held >= limits.max_connections_per_address) {
          count(FrontEvent::kPerAddress);
          refuse(fd, 429, "Too many connections from this address", true);
          continue;
        }
        ++held;
        connection->serial = next_serial++;
        connections.emplace(connection->serial, connection);
      }
      std::lock_guard lock(connection->mutex);
      arm(*connection);
    }
    return true;
  }

  std::size_t open_connections() {
    std::lock_guard registry(registry_mutex);
    return connections.size();
  }

  // Answers a connection not taken in, without blocking, and closes it.
  void refuse(int fd, int status, const std::string& message, bool retry_after) {
    if (tls == nullptr) {
      const std::string response = canned_response(status, message, retry_after);
      [[maybe_unused]] const auto sent =
          ::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ::close(fd);
  }

  // Closes up to `wanted` idle connections, those idle longest first; how many it closed.
  std::size_t close_idle(std::size_t wanted) {
    std::vector<Ptr> idle;
    for (const auto& connection : snapshot_connections()) {
      std::unique_lock lock(connection->mutex, std::try_to_lock);
      if (lock && !connection->closed && connection->phase == Phase::kIdle) {
        idle.push_back(connection);
      }
    }
    std::sort(idle.begin(), idle.end(),
              [](const Ptr& a, const Ptr& b) { return a->deadline < b->deadline; });
    std::size_t closed = 0;
    for (const auto& connection : idle) {
      if (closed == wanted) break;
      std::unique_lock lock(connection->mutex, std::try_to_lock);
      if (!lock || connection->closed || connection->phase != Phase::kIdle) continue;
      count(FrontEvent::kConnectionCap);
      close(*connection);
      ++closed;
    }
    return closed;
  }

  std::vector<Ptr> snapshot_connections() {
    std::lock_guard registry(registry_mutex);
    std::vector<Ptr> all;
    all.reserve(connections.size());
    for (const auto& [serial, connection] : connections)
      all.push_back(connection);
    return all;
  }

  // ---- connections (each function: the connection's mutex held) ----

  void close(Connection& connection) {
    if (connection.closed) return;
    connection.closed = true;
    if (connection.registered) ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, connection.fd, nullptr);
    if (connection.ssl != nullptr && connection.phase != Phase::kHandshake) {
      SSL_shutdown(connection.ssl);  // best effort: the close_notify alert
    }
    ::close(connection.fd);
    std::lock_guard registry(registry_mutex);
    if (auto it = per_address.find(connection.ip); it != per_address.end()) {
      if (--it->second == 0) per_address.erase(it);
    }
    connections.erase(connection.serial);
  }

  // Registers what the connection waits for next, once (EPOLLONESHOT): the one worker that
  // gets the event owns the connection until it arms it again.
  void arm(Connection& connection) {
    if (connection.closed) return;
    std::uint32_t wanted = 0;
    switch (connection.phase) {
      case Phase::kHandshake:
        wanted = connection.handshake_wants_write ? EPOLLOUT : EPOLLIN;
        break;
      case Phase::kIdle:
      case Phase::kHead:
      case Phase::kBody:
      case Phase::kClosing:
        // Once the client has closed its side, its end of stream would be reported for ever.
        if (!connection.peer_done) wanted = EPOLLIN;
        if (connection.ssl_read_wants_write) wanted |= EPOLLOUT;
        break;
      case Phase::kWriting:
        break;
    }
    if (connection.out_sent < connection.out.size()) {
      wanted |= EPOLLOUT;
      if (connection.ssl_write_wants_read) wanted |= EPOLLIN;
    }
    epoll_event event{};
    event.events = wanted | EPOLLONESHOT;
    event.data.u64 = connection.serial;
    ::epoll_ctl(epoll_fd, connection.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, connection.fd,
                &event);
    connection.registered = true;
  }

  // Reads what is there: > 0 bytes, 0 at the end of the stream, -1 for "nothing now" (EAGAIN),
  // -2 on an error.
  ssize_t read_some(Connection& connection, char* buffer, std::size_t size) {
    if (connection.ssl == nullptr) {
      const ssize_t n = ::recv(connection.fd, buffer, size, 0);
      if (n >= 0) return n;
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    }
    connection.ssl_read_wants_write = false;
    const int n = SSL_read(connection.ssl, buffer, static_cast<int>(size));
    if (n > 0) return n;
    switch (SSL_get_error(connection.ssl, n)) {
      case SSL_ERROR_WANT_READ:
        return -1;
      case SSL_ERROR_WANT_WRITE:
        connection.ssl_read_wants_write = true;
        return -1;
      case SSL_ERROR_ZERO_RETURN:
        return 0;
      default:
        ERR_clear_error();
        return -2;
    }
  }

  ssize_t write_some(Connection& connection, const char* data, std::size_t size) {
    if (connection.ssl == nullptr) {
      const ssize_t n = ::send(connection.fd, data, size, MSG_NOSIGNAL);
      if (n >= 0) return n;
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    }
    connection.ssl_write_wants_read = false;
    const int n =
        SSL_write(connection.ssl, data, static_cast<int>(std::min<std::size_t>(size, 1 << 20)));
    if (n > 0) return n;
    switch (SSL_get_error(connection.ssl, n)) {
      case SSL_ERROR_WANT_WRITE:
        return -1;
      case SSL_ERROR_WANT_READ:
        connection.ssl_write_wants_read = true;
        return -1;
      default:
        ERR_clear_error();
        return -2;
    }
  }

  // The socket is ready (`readable`: for reading). Runs every complete request it has, on
  // this thread, writing each answer before the next.
  void on_ready(Connection& connection, bool readable) {
    if (connection.phase == Phase::kHandshake) {
      if (!handshake(connection)) return;
      readable = true;  // the request may have come with the handshake's last flight
    }
    if (connection.out_sent < connection.out.size() && !flush(connection)) return;
    // TLS may hold decrypted bytes that epoll cannot see.
    if (connection.ssl != nullptr && SSL_pending(connection.ssl) > 0) readable = true;
    if (connection.phase == Phase::kClosing) {
      if (readable) linger(connection);
      return;
    }
    if (readable && !connection.peer_done && !receive(connection)) return;
    // advance() runs one request at a time; pipelined ones follow in this loop.
    while (!connection.closed &&
           (connection.phase == Phase::kHead || connection.phase == Phase::kBody) &&
           advance(connection)) {
    }
    if (connection.closed) return;
    if (connection.peer_done && connection.phase != Phase::kWriting &&
        connection.phase != Phase::kClosing) {
      close(connection);  // nothing more will complete a request
    }
  }

  // False when the connection was closed or must wait.
  bool handshake(Connection& connection) {
    connection.handshake_wants_write = false;
    const int rc = SSL_do_handshake(connection.ssl);
    if (rc == 1) {
      connection.phase = Phase::kHead;
      return true;
    }
    const int error = SSL_get_error(connection.ssl, rc);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      connection.handshake_wants_write = error == SSL_ERROR_WANT_WRITE;
      return false;
    }
    ERR_clear_error();
    count(FrontEvent::kTlsFailed);
    close(connection);
    return false;
  }

  // Reads into `in`; false when the connection was closed.
  bool receive(Connection& connection) {
    const std::size_t cap = limits.framing.max_head_bytes + limits.framing.max_body_bytes +
                            limits.framing.max_head_bytes;
    char buffer[kReadChunk];
    while (connection.in.size() < cap) {
      const ssize_t n = read_some(connection, buffer, sizeof buffer);
      if (n > 0) {
        if (connection.phase == Phase::kIdle) {
          // The first byte of a new request: its head has header_timeout from now.
          connection.phase = Phase::kHead;
          connection.deadline = Clock::now() + limits.header_timeout;
        }
        connection.in.append(buffer, static_cast<std::size_t>(n));
        // A short read took what there was (epoll reports the rest, if any, again): no
        // second call only to hear EAGAIN.
        if (static_cast<std::size_t>(n) < sizeof buffer && connection.ssl == nullptr) break;
        continue;
      }
      if (n == -1) return true;
      if (n == 0 && !connection.in.empty()) {
        // Half-closed after sending (as `nc` and some scripts do): what it sent is still
        // answered; then the connection ends.
        connection.peer_done = true;
        return true;
      }
      close(connection);  // the end of the stream between requests, or an error
      return false;
    }
    return true;
  }

  // Frames the request at the front of `in`, and runs it once it is complete. True when a
  // request ran and its answer went out whole (the next one may follow at once).
  bool advance(Connection& connection) {
    const auto now = Clock::now();
    if (connection.phase == Phase::kHead) {
      if (connection.in.empty()) return false;
      const auto parsed = parse_request_head(connection.in, limits.framing);
      if (parsed.state == HeadResult::State::kIncomplete) return false;
      if (parsed.state == HeadResult::State::kBad) {
        count(FrontEvent::kBadRequest);
        answer_and_close(connection, parsed.error.status, parsed.error.message, false);
        return false;
      }
      connection.head = parsed.head;
      RequestHead& head = connection.head;
      if (head.expect_continue) {
        // Answer the 100 here, where it is known that the body will be read, and take the
        // line out so that cpp-httplib does not send a second one.
        connection.in.erase(head.expect_begin, head.expect_end - head.expect_begin);
        head.head_bytes -= head.expect_end - head.expect_begin;
        if (head.body != RequestHead::Body::kNone && connection.in.size() == head.head_bytes) {
          connection.out += "HTTP/1.1 100 Continue\r\n\r\n";
          if (!flush(connection)) return false;
        }
      }
      if (head.body == RequestHead::Body::kNone) return run(connection, head.head_bytes);
      connection.phase = Phase::kBody;
      connection.body_started = now;
      if (head.body == RequestHead::Body::kChunked) connection.chunked.emplace(limits.framing);
      connection.deadline = now + body_deadline(head.content_length);
    }
    if (connection.phase != Phase::kBody) return false;
    const RequestHead& head = connection.head;
    if (head.body == RequestHead::Body::kLength) {
      if (connection.in.size() < head.head_bytes + head.content_length) return false;
      return run(connection, head.head_bytes + static_cast<std::size_t>(head.content_length));
    }
    const std::string_view body = std::string_view(connection.in).substr(head.head_bytes);
    switch (connection.chunked->scan(body)) {
      case ChunkedScanner::Result::kComplete:
        return run(connection, head.head_bytes + connection.chunked->length());
      case ChunkedScanner::Result::kBad:
        count(FrontEvent::kBadRequest);
        answer_and_close(connection, 400, connection.chunked->error(), false);
        return false;
      case ChunkedScanner::Result::kTooLarge:
        count(FrontEvent::kBadRequest);
        answer_and_close(connection, 413, "Request body too large", false);
        return false;
      case ChunkedScanner::Result::kIncomplete:
        // A chunked body's deadline grows with the data that has arrived.
        connection.deadline =
            connection.body_started + body_deadline(connection.chunked->data_bytes());
        return false;
    }
    return false;
  }

  Duration body_deadline(std::uint64_t bytes) const {
    const auto rate = std::max<std::size_t>(1, limits.body_min_rate);
    return limits.body_timeout +
           std::chrono::milliseconds(bytes * 1000 / static_cast<std::uint64_t>(rate));
  }

  // Runs the first `length` bytes of `in` (a whole request) and writes the answer.
  bool run(Connection& connection, std::size_t length) {
    const std::size_t skipped = connection.head.skipped;
    FrontRequest request;
    request.bytes = connection.in.substr(skipped, length - skipped);
    connection.in.erase(0, length);
    connection.chunked.reset();
    request.remote_ip = connection.ip;
    request.remote_port = connection.port;
    request.local_ip = connection.local_ip;
    request.local_port = connection.local_port;
    request.last = stopping || connection.peer_done ||
                   ++connection.served >= limits.max_requests_per_connection;
    FrontReply reply;
    try {
      reply = handler(request);
    } catch (const std::exception& e) {
      spdlog::error("http: request handler failed: {}", e.what());
      reply = {canned_response(500, "Internal error", false), true};
    }
    connection.out += reply.bytes;
    connection.close_after_write = reply.close || request.last;
    connection.phase = Phase::kWriting;
    connection.deadline = Clock::now() + limits.write_timeout;
    return flush(connection) && !connection.closed;
  }

  // An answer of the front's own, then the connection ends: its framing is not trusted
  // (or the server cannot take the request). What the client still sends is read and
  // dropped for a moment, so that closing does not reset the connection before the client
  // has read the answer.
  void answer_and_close(Connection& connection, int status, const std::string& message,
                        bool retry_after) {
    connection.out += canned_response(status, message, retry_after);
    connection.close_after_write = true;
    connection.phase = Phase::kWriting;
    connection.deadline = Clock::now() + limits.write_timeout;
    flush(connection);
  }

  // Sends what is in `out`; true when all of it went and the connection takes the next
  // request; false when it must wait to write, or ends (closed or closing).
  bool flush(Connection& connection) {
    while (connection.out_sent < connection.out.size()) {
      const ssize_t n = write_some(connection, connection.out.data() + connection.out_sent,
                                   connection.out.size() - connection.out_sent);
      if (n > 0) {
        connection.out_sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n == -1) return false;
      close(connection);
      return false;
    }
    connection.out.clear();
    connection.out_sent = 0;
    if (connection.phase != Phase::kWriting) return true;
    if (connection.peer_done && connection.in.empty()) {
      close(connection);
      return false;
    }
    if (connection.close_after_write) {
      if (connection.peer_done) {
        close(connection);
        return false;
      }
      // Half-close and drain briefly (see answer_and_close).
      if (connection.ssl == nullptr) ::shutdown(connection.fd, SHUT_WR);
      connection.phase = Phase::kClosing;
      connection.in.clear();
      connection.deadline = Clock::now() + kLingerTime;
      return false;
    }
    if (connection.in.empty()) {
      connection.phase = Phase::kIdle;
      connection.deadline = Clock::now() + limits.idle_timeout;
    } else {
      // The next request was sent before this answer (pipelining).
      connection.phase = Phase::kHead;
      connection.deadline = Clock::now() + limits.header_timeout;
    }
    return true;
  }

  void linger(Connection& connection) {
    char buffer[kReadChunk];
    for (int i = 0; i < 16; ++i) {
      const ssize_t n = read_some(connection, buffer, sizeof buffer);
      if (n == -1) return;
      if (n <= 0) return close(connection);
    }
  }

  // ---- threads ----

  void work() {
    // One event at a time: a request may block this thread (a durable commit, a secret
    // check), and events taken but not yet handled would wait behind it while other
    // threads sit idle.
    epoll_event ready[1];
    while (!stopping) {
      const int n = ::epoll_wait(epoll_fd, ready, 1, 1000);
      for (int i = 0; i < n && !stopping; ++i) {
        const std::uint64_t key = ready[i].data.u64;
        if (key == kWakeKey) break;
        if (key == kListenKey) {
          if (accept_some()) arm_listener(false);
          continue;
        }
        Ptr connection;
        {
          std::lock_guard registry(registry_mutex);
          const auto it = connections.find(key);
          if (it == connections.end()) continue;
          connection = it->second;
        }
        std::lock_guard lock(connection->mutex);
        if (connection->closed) continue;
        const bool failed = (ready[i].events & (EPOLLERR | EPOLLHUP)) != 0;
        on_ready(*connection, failed || (ready[i].events & EPOLLIN) != 0);
        arm(*connection);
      }
    }
  }

  // Every kSweepInterval: deadlines, the accept pause, statistics and the summary line.
  void sweep(Clock::time_point now) {
    FrontStats stats;
    for (const auto& connection : snapshot_connections()) {
      std::unique_lock lock(connection->mutex, std::try_to_lock);
      if (!lock) {
        ++stats.busy;  // a worker has it: reading, running its request or writing
        continue;
      }
      if (connection->closed) continue;
      switch (connection->phase) {
        case Phase::kIdle:
          ++stats.idle;
          break;
        case Phase::kHandshake:
        case Phase::kHead:
        case Phase::kBody:
          ++stats.reading;
          break;
        case Phase::kWriting:
        case Phase::kClosing:
          ++stats.writing;
          break;
      }
      if (now < connection->deadline) continue;
      switch (connection->phase) {
        case Phase::kIdle:
          count(FrontEvent::kIdleTimeout);
          close(*connection);
          break;
        case Phase::kHandshake:
          count(FrontEvent::kTlsFailed);
          close(*connection);
          break;
        case Phase::kHead:
          count(FrontEvent::kHeaderTimeout);
          answer_and_close(*connection, 408, "Request head not received in time", false);
          break;
        case Phase::kBody:
          count(FrontEvent::kBodyTimeout);
          answer_and_close(*connection, 408, "Request body not received in time", false);
          break;
        case Phase::kWriting:
          count(FrontEvent::kWriteTimeout);
          close(*connection);
          break;
        case Phase::kClosing:
          close(*connection);
          break;
      }
      arm(*connection);
    }
    if (accept_paused && now >= accept_resume) {
      accept_paused = false;
      arm_listener(false);
    }
    stats.open = stats.idle + stats.reading + stats.busy + stats.writing;
    stats.accepted = accepted;
    std::lock_guard lock(stats_mutex);
    snapshot = stats;
  }

  // A warning every kSummaryInterval at most, however many clients misbehave.
  void summarise(Clock::time_point now) {
    if (now < next_summary) return;
    next_summary = now + kSummaryInterval;
    std::string text;
    for (int i = 0; i < static_cast<int>(FrontEvent::kCount); ++i) {
      const auto event = static_cast<FrontEvent>(i);
      if (event == FrontEvent::kIdleTimeout) continue;  // the normal end of keep-alive
      const std::uint64_t total = events[i];
      if (total == summarised[i]) continue;
      text += (text.empty() ? "" : ", ") + std::to_string(total - summarised[i]) + " " +
              front_event_name(event);
      summarised[i] = total;
    }
    if (!text.empty()) {
      spdlog::warn("http: in the last {}s: {} ({} connections open)",
                   std::chrono::duration_cast<std::chrono::seconds>(kSummaryInterval).count(), text,
                   open_connections());
    }
  }

  void stop_workers() {
    stopping = true;
    wake();
    for (auto& worker : workers)
      worker.join();
    workers.clear();
  }

  void close_all() {
    for (const auto& connection : snapshot_connections()) {
      std::lock_guard lock(connection->mutex);
      close(*connection);
    }
  }

  // The calling thread sweeps; the workers serve. Returns once stop() was called and every
  // worker has finished the request it was running.
  void serve() {
    if (listen_fd < 0) return;
    arm_listener(true);
    for (std::size_t i = 0; i < std::max<std::size_t>(1, limits.threads); ++i) {
      workers.emplace_back([this] { work(); });
    }
    next_summary = Clock::now() + kSummaryInterval;
    bool was_paused = false;
    while (!stopping) {
      {
        std::unique_lock lock(stop_mutex);
        stop_requested.wait_for(lock, kSweepInterval, [&] { return stopping.load(); });
      }
      const auto now = Clock::now();
      if (accept_paused && !was_paused) accept_resume = now + kAcceptPause;
      was_paused = accept_paused;
      sweep(now);
      summarise(now);
    }
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
    stop_workers();
    close_all();
  }
};

HttpFront::HttpFront(FrontLimits limits, FrontHandler handler, SSL_CTX* tls)
    : impl_(std::make_unique<Impl>(std::move(limits), std::move(handler), tls)) {}

HttpFront::~HttpFront() = default;

Expected<int> HttpFront::bind(const std::string& host, int port) {
  return impl_->bind(host, port);
}

void HttpFront::serve() {
  impl_->serve();
}

void HttpFront::stop() {
  impl_->stopping = true;
  impl_->wake();
}

FrontStats HttpFront::stats() const {
  FrontStats stats;
  {
    std::lock_guard lock(impl_->stats_mutex);
    stats = impl_->snapshot;
  }
  for (int i = 0; i < static_cast<int>(FrontEvent::kCount); ++i)
    stats.events[i] = impl_->events[i];
  return stats;
}

}  // namespace stargate::server
