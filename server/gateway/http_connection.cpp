// One connection of the front (http_front_impl.hpp): TLS, reading within the deadlines,
// framing, running each complete request on the thread that read it, and writing the
// answer. Every function here runs with the connection's mutex held.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "server/gateway/http_front_impl.hpp"
#include "shared/clock.hpp"
#include "shared/errors.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"

namespace stargate::server {
namespace {

constexpr auto kLingerTime = std::chrono::seconds(2);  // reading what follows a refusal
constexpr std::size_t kReadChunk = 16 * 1024;

// Whether the peer closed its side or the connection failed: a peek that reads nothing
// away (a client that pipelines its next request is still there).
bool peer_closed(int fd) {
  char byte = 0;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return false;
  if (n == 0) return true;
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
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
    case 404:
      return ErrorCode::kNotFound;
    case 405:
      return ErrorCode::kMethodNotAllowed;
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

}  // namespace

// An answer the front makes itself, with the gateway's error body; it always closes.
std::string canned_response(int status, const std::string& message, bool retry_after,
                            const std::string& headers) {
  const std::string id = new_uuid();
  ApiError error{code_for(status), message, std::nullopt};
  if (retry_after) error.retry_after_seconds = 1;
  const std::string body = dump_json(error_body(error, format_timestamp(now_utc()), id));
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\nX-Correlation-ID: " + id + "\r\n";
  if (retry_after) head += "Retry-After: 1\r\n";
  return head + headers + "\r\n" + body;
}

void HttpFront::Impl::close(Connection& connection) {
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
void HttpFront::Impl::arm(Connection& connection) {
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
ssize_t HttpFront::Impl::read_some(Connection& connection, char* buffer, std::size_t size) {
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

ssize_t HttpFront::Impl::write_some(Connection& connection, const char* data, std::size_t size) {
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
void HttpFront::Impl::on_ready(Connection& connection, bool readable) {
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
bool HttpFront::Impl::handshake(Connection& connection) {
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
bool HttpFront::Impl::receive(Connection& connection) {
  const std::size_t cap =
      limits.framing.max_head_bytes + limits.framing.max_body_bytes + limits.framing.max_head_bytes;
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
bool HttpFront::Impl::advance(Connection& connection) {
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

Duration HttpFront::Impl::body_deadline(std::uint64_t bytes) const {
  const auto rate = std::max<std::size_t>(1, limits.body_min_rate);
  return limits.body_timeout +
         std::chrono::milliseconds(bytes * 1000 / static_cast<std::uint64_t>(rate));
}

// Runs the first `length` bytes of `in` (a whole request) and writes the answer.
bool HttpFront::Impl::run(Connection& connection, std::size_t length) {
  const std::size_t skipped = connection.head.skipped;
  FrontRequest request;
  request.bytes = connection.in.substr(skipped, length - skipped);
  connection.in.erase(0, length);
  connection.chunked.reset();
  request.remote_ip = connection.ip;
  request.remote_port = connection.port;
  request.local_ip = connection.local_ip;
  request.local_port = connection.local_port;
  request.last =
      stopping || connection.peer_done || ++connection.served >= limits.max_requests_per_connection;
  request.client_left = [fd = connection.fd] { return peer_closed(fd); };
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
void HttpFront::Impl::answer_and_close(Connection& connection, int status,
                                       const std::string& message, bool retry_after) {
  connection.out += canned_response(status, message, retry_after);
  connection.close_after_write = true;
  connection.phase = Phase::kWriting;
  connection.deadline = Clock::now() + limits.write_timeout;
  flush(connection);
}

// Sends what is in `out`; true when all of it went and the connection takes the next
// request; false when it must wait to write, or ends (closed or closing).
bool HttpFront::Impl::flush(Connection& connection) {
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

void HttpFront::Impl::linger(Connection& connection) {
  char buffer[kReadChunk];
  for (int i = 0; i < 16; ++i) {
    const ssize_t n = read_some(connection, buffer, sizeof buffer);
    if (n == -1) return;
    if (n <= 0) return close(connection);
  }
}

}  // namespace stargate::server
