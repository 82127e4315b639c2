// Fuzz target: what a local user sends on the daemon's socket, parsed as LocalApi
// configures Beast (limits), then the checks and decoders of the routes: Host, query
// string, submit body.
#include <cstdint>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "daemon/local_requests.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace stargate;
namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(daemon::kMaxLocalBody);
  parser.header_limit(16 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_done()) return 0;
  const auto request = parser.release();
  (void)daemon::is_local_host_header(std::string(request[http::field::host]));
  const std::string target(request.target());
  const auto question = target.find('?');
  if (question != std::string::npos) {
    if (auto query = daemon::parse_query(std::string_view(target).substr(question + 1))) {
      (void)query->size();
    }
  }
  auto decoded =
      daemon::decode_local_submit(std::string(request[http::field::content_type]), request.body());
  if (decoded) {
    fuzz::check(!decoded->process_type.empty(), "submit without a process type accepted");
    fuzz::check(decoded->data.is_object(), "data that is not an object accepted");
  } else {
    fuzz::check_message(decoded.error().message);
  }
  return 0;
}
