// Beast HTTP server on a Unix socket, with peer credentials and browser refusal.
#include "daemon/local_api.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "shared/errors.hpp"
#include "shared/json.hpp"
#include "shared/resources.hpp"

namespace stargate::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;
using Stream = beast::basic_stream<Local, asio::any_io_executor, beast::unlimited_rate_policy>;

namespace {

constexpr auto kAcceptPause = std::chrono::milliseconds(250);
constexpr auto kLogInterval = std::chrono::seconds(10);

// Connections open now, in all and by user: what the caps in [socket] count.
struct ConnectionCounts {
  std::size_t total = 0;
  std::map<uid_t, std::size_t> by_user;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Local::socket socket, LocalRoutes& routes, const SocketConfig& limits,
          std::shared_ptr<ConnectionCounts> counts, uid_t uid, std::string peer)
      : stream_(std::move(socket)),
        routes_(routes),
        limits_(limits),
        counts_(std::move(counts)),
        uid_(uid),
        peer_(std::move(peer)) {
    ++counts_->total;
    ++counts_->by_user[uid_];
  }

  ~Session() {
    --counts_->total;
    if (auto it = counts_->by_user.find(uid_); it != counts_->by_user.end() && --it->second == 0) {
      counts_->by_user.erase(it);
    }
  }

  // Waits up to idle_timeout for the first byte of a request; then its head has
  // header_timeout (however slowly it trickles in), and its body a time that grows with
  // its size. A client that is slower is disconnected.
  void read() {
    parser_.emplace();
    parser_->body_limit(LocalRoutes::kMaxBody);
    parser_->header_limit(16 * 1024);
    if (buffer_.size() > 0) return read_head();
    stream_.expires_after(limits_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->close();
                              self->buffer_.commit(n);
                              self->read_head();
                            });
  }

 private:
  void read_head() {
    stream_.expires_after(limits_.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->on_read(ec);
                              self->read_body();
                            });
  }

  void read_body() {
    if (parser_->is_done()) return on_read({});
    const std::uint64_t length = parser_->content_length().value_or(LocalRoutes::kMaxBody);
    const auto rate = std::max<std::size_t>(1, limits_.body_min_rate);
    stream_.expires_after(limits_.body_timeout + std::chrono::milliseconds(length * 1000 / rate));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::eof) {
      return close();
    }
    if (ec == http::error::body_limit) {
      return send(local_error(ErrorCode::kPayloadTooLarge, "Request body too large"), 11, false);
    }
    if (ec) {
      spdlog::debug("socket {}: bad request: {}", peer_, ec.message());
      return send(
          local_error(ErrorCode::kInvalidRequest, "Malformed HTTP request: " + ec.message()), 11,
          false);
    }
    auto request = parser_->release();
    const unsigned version = request.version();
    const bool keep_alive = request.keep_alive();
    const std::string method(request.method_string());
    const std::string target(request.target());
    const auto hosts = request.count(http::field::host);
    if (request.count(http::field::origin) > 0 || request.count(http::field::referer) > 0 ||
        hosts != 1 || !is_local_host_header(std::string(request[http::field::host]))) {
      spdlog::warn("socket {}: refused {} {}: looks like a browser (Origin, Referer or Host)",
                   peer_, method, target.substr(0, 100));
      return send(local_error(ErrorCode::kInsufficientPermissions,
                              "Requests from browsers are refused (send one Host: localhost)"),
                  version, false);
    }
    if (method == "GET") {
      spdlog::debug("socket {}: {} {}", peer_, method, target.substr(0, 200));
    } else {
      spdlog::info("socket {}: {} {}", peer_, method, target.substr(0, 200));
    }
    LocalRequest local{method, target, std::string(request[http::field::content_type]),
                       std::move(request.body())};
    stream_.expires_never();  // a wait may take long; the reply below sets its own timeout
    routes_.handle(local, [self = shared_from_this(), version, keep_alive](LocalResponse reply) {
      self->send(std::move(reply), version, keep_alive);
    });
  }

  void send(LocalResponse reply, unsigned version, bool keep_alive) {
    auto response = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(reply.status), version);
    response->set(http::field::server, "stargated");
    response->set(http::field::content_type, reply.content_type);
    if (!reply.text.empty()) {
      response->body() = std::move(reply.text);
    } else {
      response->body() = dump_json(reply.body) + "\n";
    }
    response->keep_alive(keep_alive);
    response->prepare_payload();
    stream_.expires_after(limits_.write_timeout);
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
                        if (ec || !response->keep_alive()) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(Local::socket::shutdown_both, ignored);
    stream_.close();
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  LocalRoutes& routes_;
  const SocketConfig& limits_;
  std::shared_ptr<ConnectionCounts> counts_;
  uid_t uid_;
  std::string peer_;
};

}  // namespace

struct LocalApi::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& i, LocalRoutes& r) : io(i), routes(r), acceptor(i), pause(i) {}

  asio::io_context& io;
  LocalRoutes& routes;
  Local::acceptor acceptor;
  asio::steady_timer pause;
  SocketConfig limits;
  std::shared_ptr<ConnectionCounts> counts = std::make_shared<ConnectionCounts>();
  std::string path;
  bool created_file = false;
  // Refusals and accept failures since the last log line about them.
  std::size_t refused = 0;
  std::size_t failures = 0;
  std::chrono::steady_clock::time_point next_log{};

  void accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, Local::socket socket) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (ec) return self->accept_failed(ec);
      self->take(std::move(socket));
      self->accept();
    });
  }

  // Out of descriptors (or memory), accepting again at once fails again at once: that loop
  // took 70% of a core and wrote a million log lines in 30 s. Wait a moment instead, and
  // say so once per interval.
  void accept_failed(beast::error_code ec) {
    ++failures;
    log_trouble("accept failed: " + ec.message());
    pause.expires_after(kAcceptPause);
    pause.async_wait([self = shared_from_this()](beast::error_code wait_error) {
      if (wait_error || !self->acceptor.is_open()) return;
      self->accept();
    });
  }

  void take(Local::socket socket) {
    ucred cred{};
    socklen_t length = sizeof cred;
    std::string peer = "uid=? pid=?";
    uid_t uid = static_cast<uid_t>(-1);
    if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0) {
      uid = cred.uid;
      peer = "uid=" + std::to_string(cred.uid) + " pid=" + std::to_string(cred.pid);
    }
    const auto user = counts->by_user.find(uid);
    if (counts->total >= limits.max_connections ||
        (user != counts->by_user.end() && user->second >= limits.max_connections_per_user)) {
      // A canned answer, without waiting: the socket is writable, the answer small.
      static const std::string kBusy = [] {
        const std::string body =
            dump_json(local_error(ErrorCode::kServiceUnavailable,
                                  "Too many connections to the daemon; try again shortly")
                          .body) +
            "\n";
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               "Connection: close\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
      }();
      beast::error_code ignored;
      socket.non_blocking(true, ignored);
      socket.write_some(asio::buffer(kBusy), ignored);
      socket.close(ignored);
      ++refused;
      log_trouble("connection from " + peer + " refused: " + std::to_string(counts->total) +
                  " open (socket.max_connections, socket.max_connections_per_user)");
      return;
    }
    std::make_shared<Session>(std::move(socket), routes, limits, counts, uid, std::move(peer))
        ->read();
  }

  void log_trouble(const std::string& what) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_log) return;
    next_log = now + kLogInterval;
    spdlog::warn("socket: {} ({} refused, {} accept failures since the last such line)", what,
                 refused, failures);
    refused = failures = 0;
  }

  Status remove_stale(const std::string& socket_path) {
    struct stat st {};
    if (lstat(socket_path.c_str(), &st) != 0) return {};  // nothing there
    if (!S_ISSOCK(st.st_mode)) {
      return fail(socket_path + " exists and is not a socket; remove it or choose another path");
    }
    Local::socket probe(io);
    beast::error_code ec;
    probe.connect(Local::endpoint(socket_path), ec);
    if (!ec) {
      return fail("another stargated is already listening on " + socket_path);
    }
    if (::unlink(socket_path.c_str()) != 0) {
      return fail("cannot remove stale socket " + socket_path + ": " + std::strerror(errno));
    }
    spdlog::info("socket: removed stale {} left by an earlier run", socket_path);
    return {};
  }

  Status bind(const SocketConfig& config) {
    path = config.path;
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
      return fail("socket path too long (at most 107 bytes): " + path);
    }
    const auto dir = std::filesystem::path(path).parent_path();
    std::error_code fs_error;
    if (!dir.empty()) std::filesystem::create_directories(dir, fs_error);
    if (fs_error) return fail("cannot create " + dir.string() + ": " + fs_error.message());
    if (auto removed = remove_stale(path); !removed) return removed;
    beast::error_code ec;
    acceptor.open(Local(), ec);
    if (!ec) {
      // Nobody may connect between bind() and chmod(): create the file without permissions.
      const mode_t old_mask = ::umask(0777);
      acceptor.bind(Local::endpoint(path), ec);
      ::umask(old_mask);
    }
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("cannot listen on " + path + ": " + ec.message());
    created_file = true;
    if (!config.group.empty()) {
      const group* entry = ::getgrnam(config.group.c_str());
      if (entry == nullptr) return fail("socket.group: no such group '" + config.group + "'");
      if (::chown(path.c_str(), static_cast<uid_t>(-1), entry->gr_gid) != 0) {
        return fail("cannot give " + path + " to group " + config.group + ": " +
                    std::strerror(errno));
      }
    }
    if (::chmod(path.c_str(), config.mode) != 0) {
      return fail("cannot chmod " + path + ": " + std::strerror(errno));
    }
    return {};
  }
};

LocalApi::LocalApi(asio::io_context& io, LocalRoutes& routes)
    : impl_(std::make_shared<Impl>(io, routes)) {}

LocalApi::~LocalApi() {
  close();
}

Status LocalApi::listen(const SocketConfig& config) {
  impl_->limits = config;
  // Descriptors for the connections, plus the queue, the gateway, hooks and logs.
  constexpr std::uint64_t kReserve = 64;
  const std::uint64_t files = raise_open_file_limit();
  if (files < config.max_connections + kReserve) {
    impl_->limits.max_connections =
        static_cast<std::size_t>(files > 2 * kReserve ? files - kReserve : 8);
    spdlog::warn("socket: max_connections lowered from {} to {} (open file limit {})",
                 config.max_connections, impl_->limits.max_connections, files);
  }
  const int passed = sd_listen_fds(1);
  if (passed >= 1) {
    const int fd = SD_LISTEN_FDS_START;
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) <= 0) {
      return fail("the socket systemd passed (LISTEN_FDS) is not a listening Unix stream socket");
    }
    beast::error_code ec;
    impl_->acceptor.assign(Local(), fd, ec);
    if (ec) return fail("cannot use the socket systemd passed: " + ec.message());
    impl_->path = config.path + " (from systemd)";
    spdlog::info("socket: using the socket passed by systemd");
  } else if (auto bound = impl_->bind(config); !bound) {
    return bound;
  }
  impl_->accept();
  return {};
}

void LocalApi::close() {
  if (!impl_->acceptor.is_open()) return;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  if (impl_->created_file) {
    ::unlink(impl_->path.c_str());
    impl_->created_file = false;
  }
}

const std::string& LocalApi::path() const {
  return impl_->path;
}

}  // namespace stargate::daemon
