// HTTP/1.1 request framing: the head's syntax as far as framing needs it, and chunked bodies.
#include "server/gateway/http_framing.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

namespace stargate::server {
namespace {

constexpr std::size_t kMaxTargetBytes = 8192;  // as cpp-httplib's own limit (414 beyond)
constexpr std::size_t kMaxMethodBytes = 32;
constexpr std::size_t kMaxChunkLine = 4096;  // a size with its extensions

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_tchar);
}

// A field value's bytes: visible ASCII, space, tab and obs-text; never NUL, CR or other
// controls.
bool is_field_value(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte == '\t' || (byte >= 0x20 && byte != 0x7F);
  });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

HeadResult bad(int status, std::string message) {
  HeadResult result;
  result.state = HeadResult::State::kBad;
  result.error = {status, std::move(message)};
  return result;
}

// "GET /path HTTP/1.1": one space between the parts, a target of visible ASCII.
HeadResult check_request_line(std::string_view line, bool& http10) {
  const auto first = line.find(' ');
  const auto last = line.rfind(' ');
  if (first == std::string_view::npos || first == last) {
    return bad(400, "Malformed request line");
  }
  const auto method = line.substr(0, first);
  const auto target = line.substr(first + 1, last - first - 1);
  const auto version = line.substr(last + 1);
  if (method.size() > kMaxMethodBytes || !is_token(method)) return bad(400, "Malformed method");
  if (target.size() > kMaxTargetBytes) return bad(414, "Request URI too long");
  if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7F;
      })) {
    return bad(400, "Malformed request target");
  }
  if (version == "HTTP/1.1") {
    http10 = false;
  } else if (version == "HTTP/1.0") {
    http10 = true;
  } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/" &&
             std::isdigit(static_cast<unsigned char>(version[5])) && version[6] == '.' &&
             std::isdigit(static_cast<unsigned char>(version[7]))) {
    return bad(505, "HTTP version not supported");
  } else {
    return bad(400, "Malformed HTTP version");
  }
  return {};
}

std::optional<std::uint64_t> parse_length(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

}  // namespace

HeadResult parse_request_head(std::string_view buffer, const FramingLimits& limits) {
  HeadResult result;
  RequestHead& head = result.head;
  std::size_t pos = 0;
  while (pos + 1 < buffer.size() && buffer[pos] == '\r' && buffer[pos + 1] == '\n')
    pos += 2;
  head.skipped = pos;
  if (pos > limits.max_head_bytes) return bad(431, "Request head too large");

  bool request_line = true;
  bool http10 = false;
  std::size_t headers = 0;
  std::size_t hosts = 0;
  std::optional<std::uint64_t> length;
  bool chunked = false;
  bool transfer_encoding = false;
  for (std::size_t line_start = pos;;) {
    const auto lf = buffer.find('\n', line_start);
    if (lf == std::string_view::npos || lf + 1 > limits.max_head_bytes) {
      if (buffer.size() <= limits.max_head_bytes) return result;  // more may come
      return request_line ? bad(414, "Request URI too long") : bad(431, "Request head too large");
    }
    if (lf == line_start || buffer[lf - 1] != '\r') return bad(400, "Line ends with a bare LF");
    const auto line = buffer.substr(line_start, lf - 1 - line_start);
    if (request_line) {
      if (auto checked = check_request_line(line, http10);
          checked.state == HeadResult::State::kBad) {
        return checked;
      }
      request_line = false;
    } else if (line.empty()) {
      head.head_bytes = lf + 1;
      break;
    } else {
      if (line.front() == ' ' || line.front() == '\t') {
        return bad(400, "Folded header lines are not accepted");
      }
      const auto colon = line.find(':');
      if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
        return bad(400, "Malformed header line");
      }
      if (++headers > limits.max_headers) return bad(431, "Too many header fields");
      const auto name = line.substr(0, colon);
      const auto value = trim(line.substr(colon + 1));
      if (!is_field_value(value)) return bad(400, "Control character in a header value");
      if (iequals(name, "Host")) {
        ++hosts;
      } else if (iequals(name, "Content-Length")) {
        const auto parsed = parse_length(value);
        if (!parsed) return bad(400, "Malformed Content-Length");
        if (length && *length != *parsed) return bad(400, "Conflicting Content-Length headers");
        length = parsed;
      } else if (iequals(name, "Transfer-Encoding")) {
        if (transfer_encoding || !iequals(value, "chunked")) {
          return bad(501, "Only the chunked transfer coding is implemented");
        }
        transfer_encoding = chunked = true;
      } else if (iequals(name, "Expect") && iequals(value, "100-continue")) {
        head.expect_continue = true;
        head.expect_begin = line_start;
        head.expect_end = lf + 1;
      }
    }
    line_start = lf + 1;
  }
  if (!http10 && hosts != 1) return bad(400, "A request needs exactly one Host header");
  if (hosts > 1) return bad(400, "A request needs exactly one Host header");
  if (transfer_encoding && length) {
    return bad(400, "Content-Length and Transfer-Encoding together");
  }
  if (transfer_encoding && http10) return bad(400, "Transfer-Encoding in an HTTP/1.0 request");
  if (chunked) {
    head.body = RequestHead::Body::kChunked;
  } else if (length && *length > 0) {
    if (*length > limits.max_body_bytes) return bad(413, "Request body too large");
    head.body = RequestHead::Body::kLength;
    head.content_length = *length;
  }
  result.state = HeadResult::State::kComplete;
  return result;
}

ChunkedScanner::Result ChunkedScanner::bad(std::string message) {
  error_ = std::move(message);
  return Result::kBad;
}

ChunkedScanner::Result ChunkedScanner::scan(std::string_view body) {
  while (phase_ != Phase::kDone) {
    switch (phase_) {
      case Phase::kSize:
      case Phase::kTrailer: {
        const auto lf = body.find('\n', offset_);
        if (lf == std::string_view::npos) {
          offset_ = body.size();
          const auto pending = offset_ - line_start_;
          if (phase_ == Phase::kSize && pending > kMaxChunkLine) return bad("Chunk line too long");
          if (phase_ == Phase::kTrailer && trailer_bytes_ + pending > limits_.max_head_bytes) {
            return bad("Trailer fields too large");
          }
          return Result::kIncomplete;
        }
        if (lf == line_start_ || body[lf - 1] != '\r') return bad("Line ends with a bare LF");
        const auto line = body.substr(line_start_, lf - 1 - line_start_);
        offset_ = line_start_ = lf + 1;
        if (phase_ == Phase::kTrailer) {
          if (line.empty()) {
            phase_ = Phase::kDone;
            break;
          }
          trailer_bytes_ += line.size() + 2;
          const auto colon = line.find(':');
          if (trailer_bytes_ > limits_.max_head_bytes) return bad("Trailer fields too large");
          if (colon == std::string_view::npos || !is_token(line.substr(0, colon)) ||
              !is_field_value(line.substr(colon + 1))) {
            return bad("Malformed trailer field");
          }
          break;
        }
        std::size_t digits = 0;
        std::uint64_t size = 0;
        while (digits < line.size() && std::isxdigit(static_cast<unsigned char>(line[digits]))) {
          if (digits == 15) return bad("Chunk size too large");
          const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(line[digits])));
          size = size * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
          ++digits;
        }
        const auto rest = line.substr(digits);
        const auto extension = trim(rest);
        if (digits == 0 || (!extension.empty() && extension.front() != ';') ||
            !is_field_value(rest)) {
          return bad("Malformed chunk size");
        }
        if (size > limits_.max_body_bytes || data_bytes_ + size > limits_.max_body_bytes) {
          return Result::kTooLarge;
        }
        data_bytes_ += size;
        chunk_left_ = size;
        phase_ = size == 0 ? Phase::kTrailer : Phase::kData;
        break;
      }
      case Phase::kData: {
        const auto take = std::min<std::uint64_t>(chunk_left_, body.size() - offset_);
        offset_ += static_cast<std::size_t>(take);
        chunk_left_ -= take;
        if (chunk_left_ > 0) return Result::kIncomplete;
        phase_ = Phase::kDataEnd;
        break;
      }
      case Phase::kDataEnd:
        if (body.size() - offset_ < 2) {
          if (body.size() > offset_ && body[offset_] != '\r') return bad("Chunk data too long");
          return Result::kIncomplete;
        }
        if (body[offset_] != '\r' || body[offset_ + 1] != '\n') return bad("Chunk data too long");
        offset_ += 2;
        line_start_ = offset_;
        phase_ = Phase::kSize;
        break;
      case Phase::kDone:
        break;
    }
  }
  return Result::kComplete;
}

bool none_match(std::string_view field, std::string_view tag) {
  const auto ows = [&](std::size_t& at) {
    while (at < field.size() && (field[at] == ' ' || field[at] == '\t'))
      ++at;
  };
  std::size_t at = 0;
  ows(at);
  if (field.substr(at, 1) == "*") {
    ++at;
    ows(at);
    return at == field.size();
  }
  bool matched = false;
  bool any = false;
  while (at < field.size()) {
    if (field[at] == ',') {  // empty list elements are allowed (RFC 9110 §5.6.1)
      ++at;
      ows(at);
      continue;
    }
    if (field.substr(at, 2) == "W/") at += 2;
    if (at >= field.size() || field[at] != '"') return false;
    const std::size_t open = at++;
    while (at < field.size() && field[at] != '"') {
      const auto c = static_cast<unsigned char>(field[at]);
      if (c < 0x21 || c == 0x7f) return false;  // etagc: no controls, spaces or DEL
      ++at;
    }
    if (at >= field.size()) return false;  // unterminated
    ++at;
    if (field.substr(open, at - open) == tag) matched = true;
    any = true;
    ows(at);
    if (at < field.size() && field[at] != ',') return false;
  }
  return any && matched;
}

void drop_empty_length_of_304(std::string& response) {
  if (response.rfind("HTTP/1.1 304 ", 0) != 0) return;
  const auto head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos) return;
  const std::string_view line = "\r\nContent-Length: 0\r\n";
  const auto at = response.find(line);
  if (at == std::string::npos || at > head_end) return;
  response.erase(at + 2, line.size() - 2);
}

}  // namespace stargate::server
