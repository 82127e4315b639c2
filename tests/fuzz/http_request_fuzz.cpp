// Fuzz target: the gateway's request decoding. Bytes as a client sends them go through the
// front's framing (http_framing.cpp); what it accepts goes through cpp-httplib's parser
// and routes that run the process API's decoders (requests.cpp) without a store.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "server/gateway/http_framing.hpp"
#include "server/gateway/http_stream.hpp"
#include "server/processes/requests.hpp"
#include "shared/ids.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace stargate;
using namespace stargate::server;

namespace {

void answer(httplib::Response& res, bool ok, const std::string& message) {
  fuzz::check_message(message);
  res.status = ok ? 200 : 400;
  res.set_content(message, "text/plain");
}

Dispatcher& dispatcher() {
  static Dispatcher* server = [] {
    auto* s = new Dispatcher();
    s->set_payload_max_length(64 * 1024);
    s->Post("/api/stargate/processes", [](const httplib::Request& req, httplib::Response& res) {
      auto decoded = decode_submit(req.get_header_value("Content-Type"), req.body,
                                   req.get_header_value("Idempotency-Key"), {64 * 1024, 1024});
      if (decoded) {
        fuzz::check(is_safe_id(decoded->client_process_id), "bad clientProcessId accepted");
        fuzz::check(decoded->data.is_object(), "data that is not an object accepted");
        (void)request_hash(*decoded);
      }
      answer(res, bool(decoded), decoded ? "" : decoded.error().message);
    });
    s->Get("/api/stargate/processes", [](const httplib::Request& req, httplib::Response& res) {
      auto query = decode_list_query(req.params);
      if (query) fuzz::check(query->limit >= 1 && query->limit <= 100, "limit out of range");
      answer(res, bool(query), query ? "" : query.error().message);
    });
    s->Get(
        "/api/stargate/processes/changes", [](const httplib::Request& req, httplib::Response& res) {
          auto query = decode_changes_query(req.params, std::chrono::seconds(60));
          if (query) {
            fuzz::check(query->limit >= 1 && query->limit <= 500, "changes limit out of range");
            fuzz::check(query->wait >= Duration::zero() && query->wait <= std::chrono::seconds(60),
                        "wait beyond the cap");
            fuzz::check(query->cursor.size() <= 128, "overlong cursor accepted");
          }
          answer(res, bool(query), query ? "" : query.error().message);
        });
    s->Get(R"(/api/stargate/processes/([^/]+))",
           [](const httplib::Request& req, httplib::Response& res) {
             const std::string field = req.get_header_value("If-None-Match");
             if (none_match(field, "\"0123abcd\"")) {
               fuzz::check(field.find("\"0123abcd\"") != std::string::npos ||
                               field.find('*') != std::string::npos,
                           "If-None-Match matched a tag it does not list");
             }
             answer(res, is_process_id(req.matches[1].str()), "");
           });
    s->Post(R"(/api/stargate/processes/([^/]+)/retry)",
            [](const httplib::Request& req, httplib::Response& res) {
              answer(res, is_process_id(req.matches[1].str()), "");
            });
    s->Post("/oauth/token", [](const httplib::Request& req, httplib::Response& res) {
      const auto basic = basic_credentials(req.get_header_value("Authorization"));
      answer(res, basic.has_value() || req.has_param("client_id"), "");
    });
    return s;
  }();
  return *server;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FramingLimits limits;
  limits.max_head_bytes = 4096;
  limits.max_body_bytes = 64 * 1024;
  limits.max_headers = 50;
  const auto head = parse_request_head(bytes, limits);
  if (head.state == HeadResult::State::kBad) {
    const int status = head.error.status;
    fuzz::check(status == 400 || status == 413 || status == 414 || status == 431 || status == 501 ||
                    status == 505,
                "unexpected framing status");
    fuzz::check_message(head.error.message);
    return 0;
  }
  if (head.state == HeadResult::State::kIncomplete) return 0;
  fuzz::check(head.head.head_bytes <= bytes.size() && head.head.skipped < head.head.head_bytes,
              "head longer than its bytes");
  std::size_t total = head.head.head_bytes;
  if (head.head.body == RequestHead::Body::kLength) {
    if (bytes.size() - total < head.head.content_length) return 0;
    total += static_cast<std::size_t>(head.head.content_length);
  } else if (head.head.body == RequestHead::Body::kChunked) {
    ChunkedScanner scanner(limits);
    if (scanner.scan(bytes.substr(total)) != ChunkedScanner::Result::kComplete) {
      fuzz::check_message(scanner.error());
      return 0;
    }
    fuzz::check(scanner.data_bytes() <= limits.max_body_bytes, "chunked body past its limit");
    total += scanner.length();
  }
  const auto request = bytes.substr(head.head.skipped, total - head.head.skipped);
  BufferStream stream(request, {"192.0.2.1", 40000, "127.0.0.1", 8080});
  bool closed = false;
  dispatcher().process_request(stream, false, closed, {});
  return 0;
}
