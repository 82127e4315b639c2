// Where one HTTP/1.1 request ends in the bytes a connection has sent so far (RFC 9112),
// and whether its framing is one the gateway accepts. The connection front (http_front.cpp)
// reads a whole request with this before any thread works on it; cpp-httplib then parses
// the bytes again. Strict where leniency lets two readers disagree on where a request ends
// (request smuggling): bare LF, obs-fold, conflicting Content-Length, Content-Length with
// Transfer-Encoding, a transfer coding other than chunked, missing or repeated Host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace stargate::server {

struct FramingLimits {
  std::size_t max_head_bytes = 16 * 1024;  // request line and headers, with the blank line
  std::size_t max_body_bytes = 1 << 20;    // Content-Length, or the data of all chunks
  std::size_t max_headers = 100;
  bool operator==(const FramingLimits&) const = default;
};

// A request that cannot be served, and the status that says why (400, 413, 414, 431, 501,
// 505). The connection is closed after the answer: its framing cannot be trusted.
struct FramingError {
  int status = 400;
  std::string message;
};

struct RequestHead {
  std::size_t skipped = 0;     // empty lines before the request line (RFC 9112 §2.2)
  std::size_t head_bytes = 0;  // through the blank line, `skipped` included
  enum class Body { kNone, kLength, kChunked } body = Body::kNone;
  std::uint64_t content_length = 0;
  bool expect_continue = false;  // "Expect: 100-continue"
  // The byte range (in the buffer) of the Expect line, so that the front can answer 100
  // itself and take the line out.
  std::size_t expect_begin = 0;
  std::size_t expect_end = 0;
};

struct HeadResult {
  enum class State { kIncomplete, kComplete, kBad } state = State::kIncomplete;
  RequestHead head;
  FramingError error;
};

// Looks for a complete request head at the start of `buffer`. kIncomplete while more bytes
// may complete it (a head larger than the limit is kBad at once, 431), kBad as soon as the
// bytes seen cannot be the start of a valid head.
HeadResult parse_request_head(std::string_view buffer, const FramingLimits& limits);

// Follows a chunked body (RFC 9112 §7.1) as its bytes arrive, without scanning any byte
// twice. Trailer fields are allowed and bounded by max_head_bytes.
class ChunkedScanner {
 public:
  enum class Result { kIncomplete, kComplete, kBad, kTooLarge };
  explicit ChunkedScanner(const FramingLimits& limits) : limits_(limits) {}

  // `body` is every byte after the head received so far (it only grows between calls).
  Result scan(std::string_view body);
  // When complete: the length of the whole chunked body, trailers and last CRLF included.
  std::size_t length() const { return offset_; }
  // The chunk data seen so far.
  std::uint64_t data_bytes() const { return data_bytes_; }
  const std::string& error() const { return error_; }

 private:
  Result bad(std::string message);

  enum class Phase { kSize, kData, kDataEnd, kTrailer, kDone } phase_ = Phase::kSize;
  FramingLimits limits_;
  std::size_t offset_ = 0;        // bytes of `body` consumed
  std::size_t line_start_ = 0;    // where the line being read began
  std::uint64_t chunk_left_ = 0;  // data bytes of the current chunk still to come
  std::uint64_t data_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::string error_;
};

// Whether an If-None-Match field value (RFC 9110 §13.1.2) is "*" or lists `tag` (an
// entity-tag with its quotes), by the weak comparison the field calls for (W/"x" matches
// "x"). A malformed value matches nothing, so that the full answer is sent.
bool none_match(std::string_view field, std::string_view tag);

// cpp-httplib writes "Content-Length: 0" on a 304, which RFC 9110 §8.6 forbids unless the
// 200 answer's body were empty: takes it out of a serialized 304 answer (any other answer
// is left as it is).
void drop_empty_length_of_304(std::string& response);

}  // namespace stargate::server
