// Tests of server/gateway/http_framing.cpp: where a request ends, and which framings are refused.
#include "server/gateway/http_framing.hpp"

#include <gtest/gtest.h>

namespace stargate::server {
namespace {

using State = HeadResult::State;

HeadResult head(const std::string& text, FramingLimits limits = {}) {
  return parse_request_head(text, limits);
}

int refused_with(const std::string& text, FramingLimits limits = {}) {
  const auto result = head(text, limits);
  return result.state == State::kBad ? result.error.status : 0;
}

TEST(HttpFraming, FindsTheEndOfAHead) {
  const std::string get = "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
  auto result = head(get + "GET /next");
  ASSERT_EQ(result.state, State::kComplete);
  EXPECT_EQ(result.head.head_bytes, get.size());
  EXPECT_EQ(result.head.body, RequestHead::Body::kNone);
  // Every prefix is incomplete, never wrong.
  for (std::size_t n = 0; n < get.size(); ++n) {
    EXPECT_EQ(head(get.substr(0, n)).state, State::kIncomplete) << n;
  }
  // Empty lines before a request are skipped (RFC 9112 §2.2) and counted.
  auto skipped = head("\r\n\r\n" + get);
  ASSERT_EQ(skipped.state, State::kComplete);
  EXPECT_EQ(skipped.head.skipped, 4u);
  EXPECT_EQ(skipped.head.head_bytes, get.size() + 4);
  // HTTP/1.0 needs no Host.
  EXPECT_EQ(head("GET / HTTP/1.0\r\n\r\n").state, State::kComplete);
}

TEST(HttpFraming, ReadsContentLengthAndChunked) {
  auto post = head("POST /p HTTP/1.1\r\nHost: x\r\ncontent-length: 12\r\n\r\n");
  ASSERT_EQ(post.state, State::kComplete);
  EXPECT_EQ(post.head.body, RequestHead::Body::kLength);
  EXPECT_EQ(post.head.content_length, 12u);
  auto chunked = head("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_EQ(chunked.state, State::kComplete);
  EXPECT_EQ(chunked.head.body, RequestHead::Body::kChunked);
  // The same length twice is one length.
  EXPECT_EQ(head("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n")
                .head.content_length,
            3u);
  auto expect =
      head("POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  ASSERT_EQ(expect.state, State::kComplete);
  EXPECT_TRUE(expect.head.expect_continue);
  EXPECT_EQ(expect.head.expect_end - expect.head.expect_begin,
            std::string("Expect: 100-continue\r\n").size());
}

TEST(HttpFraming, RefusesFramingsTwoReadersCouldDisagreeOn) {
  const std::string line = "POST /p HTTP/1.1\r\nHost: x\r\n";
  EXPECT_EQ(refused_with(line + "Content-Length: 3\r\nContent-Length: 4\r\n\r\n"), 400);
  EXPECT_EQ(refused_with(line + "Content-Length: 3, 3\r\n\r\n"), 400);
  EXPECT_EQ(refused_with(line + "Content-Length: +3\r\n\r\n"), 400);
  EXPECT_EQ(refused_with(line + "Content-Length: 99999999999999999999\r\n\r\n"), 400);
  EXPECT_EQ(refused_with(line + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(refused_with(line + "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  EXPECT_EQ(refused_with(line + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            501);
  EXPECT_EQ(refused_with("POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(refused_with(line + "Content-Length : 3\r\n\r\n"), 400);  // space before the colon
  EXPECT_EQ(refused_with(line + "X-A: 1\r\n folded\r\n\r\n"), 400);   // obs-fold
  EXPECT_EQ(refused_with("GET / HTTP/1.1\nHost: x\n\n"), 400);        // bare LF
  EXPECT_EQ(refused_with("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n"), 400);
  EXPECT_EQ(refused_with(std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", 34)), 400);
  EXPECT_EQ(refused_with("GET / HTTP/1.1\r\n\r\n"), 400);                        // no Host
  EXPECT_EQ(refused_with("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);  // two
}

TEST(HttpFraming, RefusesMalformedRequestLines) {
  EXPECT_EQ(refused_with("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(refused_with("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(refused_with("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(refused_with("GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(refused_with("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
  EXPECT_EQ(refused_with("GET / SPDY/3\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(refused_with("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
}

TEST(HttpFraming, EnforcesItsLimits) {
  FramingLimits limits;
  limits.max_head_bytes = 1024;
  limits.max_body_bytes = 100;
  limits.max_headers = 3;
  EXPECT_EQ(refused_with("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"), 414);
  // A head that has not ended by the limit is refused as soon as the limit is passed.
  EXPECT_EQ(refused_with("GET / HTTP/1.1\r\nX: " + std::string(2000, 'a'), limits), 431);
  EXPECT_EQ(refused_with("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits), 431);
  EXPECT_EQ(refused_with("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", limits), 413);
  EXPECT_EQ(head(std::string(2000, '\r'), limits).state, State::kBad);
}

ChunkedScanner::Result scan_all(const std::string& body, FramingLimits limits = {}) {
  ChunkedScanner scanner(limits);
  return scanner.scan(body);
}

TEST(HttpFraming, FollowsChunkedBodiesByteByByte) {
  const std::string body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: yes\r\n\r\n";
  ChunkedScanner scanner({});
  // Fed one byte at a time, it completes exactly at the last byte.
  for (std::size_t n = 1; n < body.size(); ++n) {
    ASSERT_EQ(scanner.scan(std::string_view(body).substr(0, n)),
              ChunkedScanner::Result::kIncomplete)
        << n;
  }
  ASSERT_EQ(scanner.scan(body), ChunkedScanner::Result::kComplete);
  EXPECT_EQ(scanner.length(), body.size());
  EXPECT_EQ(scanner.data_bytes(), 11u);
  ChunkedScanner again({});
  EXPECT_EQ(again.scan(body + "GET / HTTP/1.1\r\n"), ChunkedScanner::Result::kComplete);
  EXPECT_EQ(again.length(), body.size());
}

TEST(HttpFraming, RefusesBadAndOversizedChunks) {
  using Result = ChunkedScanner::Result;
  EXPECT_EQ(scan_all("z\r\n"), Result::kBad);
  EXPECT_EQ(scan_all("\r\n"), Result::kBad);
  EXPECT_EQ(scan_all("5\nhello\r\n0\r\n\r\n"), Result::kBad);
  EXPECT_EQ(scan_all("5\r\nhello!\r\n"), Result::kBad);
  EXPECT_EQ(scan_all("ffffffffffffffffff\r\n"), Result::kBad);
  EXPECT_EQ(scan_all(std::string(5000, '0')), Result::kBad);
  EXPECT_EQ(scan_all("0\r\nno colon\r\n\r\n"), Result::kBad);
  FramingLimits small;
  small.max_body_bytes = 10;
  EXPECT_EQ(scan_all("b\r\n", small), Result::kTooLarge);
  EXPECT_EQ(scan_all("6\r\nhello \r\n6\r\n", small), Result::kTooLarge);
  EXPECT_EQ(scan_all("a\r\n0123456789\r\n0\r\n\r\n", small), Result::kComplete);
  small.max_head_bytes = 64;
  EXPECT_EQ(scan_all("0\r\nA: " + std::string(100, 'a'), small), Result::kBad);
}

// If-None-Match: "*", or a list of entity-tags compared weakly; anything malformed
// matches nothing (the full answer goes out).
TEST(HttpFraming, IfNoneMatchListsAndMalformedValues) {
  const std::string tag = "\"abc\"";
  EXPECT_TRUE(none_match("\"abc\"", tag));
  EXPECT_TRUE(none_match("  W/\"abc\"  ", tag));
  EXPECT_TRUE(none_match("\"x\", \"abc\"", tag));
  EXPECT_TRUE(none_match(",, \"x\" ,\"abc\",", tag));
  EXPECT_TRUE(none_match("*", tag));
  EXPECT_TRUE(none_match(" * ", tag));
  EXPECT_FALSE(none_match("", tag));
  EXPECT_FALSE(none_match("\"abcd\"", tag));
  EXPECT_FALSE(none_match("abc", tag));              // not quoted
  EXPECT_FALSE(none_match("\"abc", tag));            // unterminated
  EXPECT_FALSE(none_match("\"a bc\"", "\"a bc\""));  // a space is not an etagc
  EXPECT_FALSE(none_match("\"abc\" \"x\"", tag));    // no comma between them
  EXPECT_FALSE(none_match("*, \"abc\"", tag));       // "*" stands alone
  EXPECT_FALSE(none_match("w/\"abc\"", tag));        // the weak prefix is case-sensitive
  EXPECT_FALSE(none_match(std::string(100000, ','), tag));
  std::string many;
  for (int i = 0; i < 10000; ++i)
    many += "\"t" + std::to_string(i) + "\", ";
  EXPECT_TRUE(none_match(many + tag, tag));
}

TEST(HttpFraming, A304CarriesNoEmptyContentLength) {
  std::string not_modified =
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\nETag: \"a\"\r\n\r\n";
  drop_empty_length_of_304(not_modified);
  EXPECT_EQ(not_modified, "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n");
  std::string last = "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\nContent-Length: 0\r\n\r\n";
  drop_empty_length_of_304(last);
  EXPECT_EQ(last, "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n");
  for (std::string other : {std::string("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
                            std::string("HTTP/1.1 304 Not Modified\r\nX: 1\r\n\r\n"),
                            std::string("HTTP/1.1 304 Not Modified\r\nContent-Length: 0")}) {
    const std::string before = other;
    drop_empty_length_of_304(other);
    EXPECT_EQ(other, before);
  }
}

}  // namespace
}  // namespace stargate::server
