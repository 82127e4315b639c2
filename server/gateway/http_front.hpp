// The gateway's connection front: a fixed number of worker threads share one epoll set of
// non-blocking sockets. A worker that is told a connection is ready reads what is there,
// and only when a whole request has arrived does it run it (cpp-httplib's parsing and
// routing) and write the answer, on the same thread, without a hand-over. A slow, idle or
// flooding client therefore costs a descriptor and the bytes it sent, never a thread: a
// request head must arrive within a deadline counted from its first byte, a body within one
// proportional to its size, idle connections are closed, and connections per address and
// in all are capped (a sweeper thread keeps the deadlines).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <openssl/types.h>  // SSL_CTX, without the rest of OpenSSL

#include "server/gateway/http_framing.hpp"
#include "shared/duration.hpp"
#include "shared/expected.hpp"

namespace stargate::server {

struct FrontLimits {
  std::size_t threads = 64;            // workers; a request waiting on a commit holds one
  std::size_t max_connections = 4096;  // open at once, in all
  std::size_t max_connections_per_address = 128;
  std::size_t max_requests_per_connection = 1000;
  Duration header_timeout = std::chrono::seconds(10);  // from the head's first byte
  Duration idle_timeout = std::chrono::seconds(5);     // between requests
  Duration body_timeout = std::chrono::seconds(10);    // plus size / body_min_rate
  std::size_t body_min_rate = 16 * 1024;               // bytes per second
  Duration write_timeout = std::chrono::seconds(10);
  FramingLimits framing;
  bool operator==(const FrontLimits&) const = default;
};

// One complete request as the client sent it, for a worker.
struct FrontRequest {
  std::string bytes;  // the head (empty lines before it removed) and the body
  std::string remote_ip;
  int remote_port = 0;
  std::string local_ip;
  int local_port = 0;
  bool last = false;  // the connection is closed after this answer
  // True once the client has closed its side (or the connection failed), looked at
  // without reading anything; for a handler that holds the request a long time. Callable
  // only while the handler runs.
  std::function<bool()> client_left;
};

struct FrontReply {
  std::string bytes;   // the whole response
  bool close = false;  // close the connection once it is written
};

// An answer of the gateway's own making, with its error body (and `headers`, each line
// ending in CRLF); the connection closes after it.
std::string canned_response(int status, const std::string& message, bool retry_after,
                            const std::string& headers = "");

// Runs on a worker thread; must not throw (an exception becomes a 500 and a closed
// connection).
using FrontHandler = std::function<FrontReply(FrontRequest&)>;

// Why connections were closed or refused by the front itself (not by the handler).
enum class FrontEvent {
  kHeaderTimeout,  // the head did not arrive within header_timeout
  kBodyTimeout,    // the body did not arrive in time
  kIdleTimeout,    // no new request within idle_timeout (normal keep-alive end)
  kWriteTimeout,   // the client did not read the answer within write_timeout
  kBadRequest,     // framing refused (400, 413, 414, 431, 501, 505)
  kPerAddress,     // refused: max_connections_per_address
  kConnectionCap,  // refused, or an idle one closed: max_connections
  kTlsFailed,      // handshake failed or timed out
  kAcceptPaused,   // accept paused: out of file descriptors
  kCount
};
const char* front_event_name(FrontEvent event);

struct FrontStats {
  std::uint64_t accepted = 0;
  std::size_t open = 0;
  std::size_t reading = 0;  // between a request's first byte and its last
  std::size_t idle = 0;
  std::size_t busy = 0;     // a worker has it now (reading, running its request, writing)
  std::size_t writing = 0;  // waiting for the client to take the rest of an answer
  std::uint64_t events[static_cast<int>(FrontEvent::kCount)] = {};
};

class HttpFront {
 public:
  // `tls`, when not null, is used for every connection (not owned; must outlive the front).
  HttpFront(FrontLimits limits, FrontHandler handler, SSL_CTX* tls);
  ~HttpFront();
  HttpFront(const HttpFront&) = delete;

  // Listens on host:port (port 0: any free port); returns the port bound. SO_REUSEADDR but
  // not SO_REUSEPORT: a second server cannot take part of this one's connections.
  Expected<int> bind(const std::string& host, int port);
  // Serves until stop(): requests being run are answered, then every connection closes.
  void serve();
  // Safe from any thread, also before serve().
  void stop();
  // A snapshot for /metrics; safe from any thread.
  FrontStats stats() const;
  // Connections accepted from now on use `tls` (a reload's new certificate); those open go
  // on with the one they have. Returns the context used until now, for the caller to free
  // (connections hold their own references). Only for a front made with TLS.
  SSL_CTX* set_tls(SSL_CTX* tls);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stargate::server
