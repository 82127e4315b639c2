// Beast client over a Unix socket.
#include "cli/daemon_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "shared/json.hpp"

namespace stargate::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;

namespace {

ConnectError connect_error(const std::string& path, const boost::system::error_code& ec) {
  if (ec == asio::error::access_denied || ec.value() == EACCES || ec.value() == EPERM) {
    return {ConnectError::Kind::kPermission,
            "permission denied on " + path +
                ": join the group that owns the socket (usually 'stargate': sudo usermod -aG "
                "stargate $USER, then log in again), or run as root"};
  }
  if (ec.value() == ENOENT || ec.value() == ECONNREFUSED || ec == asio::error::connection_refused) {
    return {ConnectError::Kind::kNotRunning,
            "cannot reach stargated at " + path + " (" + ec.message() +
                "); is it running? Try: systemctl status stargated (or set --socket / "
                "STARGATE_SOCKET)"};
  }
  return {ConnectError::Kind::kOther, "cannot talk to stargated at " + path + ": " + ec.message()};
}

}  // namespace

Expected<Reply, ConnectError> DaemonClient::call(const std::string& method,
                                                 const std::string& target,
                                                 const nlohmann::json& body,
                                                 int timeout_seconds) const {
  asio::io_context io;
  Local::socket socket(io);
  boost::system::error_code ec;
  socket.connect(Local::endpoint(path_), ec);
  if (ec) return Unexpected{connect_error(path_, ec)};
  timeval limit{timeout_seconds, 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);

  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, "localhost");
  request.set(http::field::user_agent, "stargate-cli");
  request.keep_alive(false);
  if (!body.is_null()) {
    request.set(http::field::content_type, "application/json");
    request.body() = dump_json(body);
  }
  request.prepare_payload();
  http::write(socket, request, ec);
  if (ec) return Unexpected{connect_error(path_, ec)};

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 << 20);
  http::read(socket, buffer, parser, ec);
  if (ec) {
    return Unexpected{ConnectError{ConnectError::Kind::kOther,
                                   "no answer from stargated at " + path_ + ": " + ec.message()}};
  }
  auto& response = parser.get();
  Reply reply;
  reply.status = static_cast<int>(response.result_int());
  // Whatever answers on the socket (not always stargated) is read like any outside bytes.
  auto parsed = parse_json(response.body(), {256 << 20, 128});
  reply.body = parsed ? std::move(*parsed) : nlohmann::json(nullptr);
  return reply;
}

}  // namespace stargate::cli
