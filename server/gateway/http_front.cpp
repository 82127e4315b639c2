// The connection front: worker threads that share one epoll set of non-blocking sockets.
// Here: listening and accepting, the registry of connections with its caps, the workers
// and the sweeper that enforces the deadlines. One connection's life is in
// http_connection.cpp.
#include "server/gateway/http_front.hpp"

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
#include <cstring>
#include <memory>
#include <mutex>

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "server/gateway/http_front_impl.hpp"
#include "shared/errors.hpp"
#include "shared/resources.hpp"

namespace stargate::server {
namespace {

constexpr auto kSweepInterval = std::chrono::milliseconds(250);
constexpr auto kSummaryInterval = std::chrono::seconds(10);
constexpr auto kAcceptPause = std::chrono::milliseconds(250);
constexpr int kAcceptBatch = 64;
constexpr std::size_t kFdReserve = 64;  // descriptors kept for the store, logs, handlers

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

HttpFront::Impl::Impl(FrontLimits l, FrontHandler h, SSL_CTX* t)
    : limits(std::move(l)), handler(std::move(h)), uses_tls(t != nullptr), tls(t) {
  epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;  // level-triggered: every worker sees the stop
  event.data.u64 = kWakeKey;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &event);
}

HttpFront::Impl::~Impl() {
  stop_workers();
  close_all();
  if (listen_fd >= 0) ::close(listen_fd);
  if (wake_fd >= 0) ::close(wake_fd);
  if (epoll_fd >= 0) ::close(epoll_fd);
}

// Stops the workers (their epoll_wait returns) and the sweeper.
void HttpFront::Impl::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(wake_fd, &one, sizeof one);
  std::lock_guard lock(stop_mutex);
  stop_requested.notify_all();
}

Expected<int> HttpFront::Impl::bind(const std::string& host, int port) {
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
void HttpFront::Impl::arm_listener(bool add) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLONESHOT;
  event.data.u64 = kListenKey;
  ::epoll_ctl(epoll_fd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, listen_fd, &event);
}

// Accepts what waits; false when accepting must pause (the sweeper arms it again).
bool HttpFront::Impl::accept_some() {
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
    if (uses_tls) {
      {
        std::lock_guard lock(tls_mutex);
        connection->ssl = SSL_new(tls);  // holds its own reference to the context
      }
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

std::size_t HttpFront::Impl::open_connections() {
  std::lock_guard registry(registry_mutex);
  return connections.size();
}

// Answers a connection not taken in, without blocking, and closes it.
void HttpFront::Impl::refuse(int fd, int status, const std::string& message, bool retry_after) {
  if (!uses_tls) {
    const std::string response = canned_response(status, message, retry_after);
    [[maybe_unused]] const auto sent =
        ::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  ::close(fd);
}

// Closes up to `wanted` idle connections, those idle longest first; how many it closed.
std::size_t HttpFront::Impl::close_idle(std::size_t wanted) {
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

std::vector<HttpFront::Impl::Ptr> HttpFront::Impl::snapshot_connections() {
  std::lock_guard registry(registry_mutex);
  std::vector<Ptr> all;
  all.reserve(connections.size());
  for (const auto& [serial, connection] : connections)
    all.push_back(connection);
  return all;
}

void HttpFront::Impl::work() {
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
void HttpFront::Impl::sweep(Clock::time_point now) {
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
void HttpFront::Impl::summarise(Clock::time_point now) {
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

void HttpFront::Impl::stop_workers() {
  stopping = true;
  wake();
  for (auto& worker : workers)
    worker.join();
  workers.clear();
}

void HttpFront::Impl::close_all() {
  for (const auto& connection : snapshot_connections()) {
    std::lock_guard lock(connection->mutex);
    close(*connection);
  }
}

// The calling thread sweeps; the workers serve. Returns once stop() was called and every
// worker has finished the request it was running.
void HttpFront::Impl::serve() {
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

HttpFront::HttpFront(FrontLimits limits, FrontHandler handler, SSL_CTX* tls)
    : impl_(std::make_unique<Impl>(std::move(limits), std::move(handler), tls)) {}

SSL_CTX* HttpFront::set_tls(SSL_CTX* tls) {
  std::lock_guard lock(impl_->tls_mutex);
  return std::exchange(impl_->tls, tls);
}

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
