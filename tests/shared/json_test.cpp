// Tests of shared/json.cpp: limits and positioned errors.
#include "shared/json.hpp"

#include <gtest/gtest.h>

namespace stargate {
namespace {

TEST(Json, ParsesValidText) {
  auto parsed = parse_json(R"({"a": [1, 2, {"b": "c"}]})");
  ASSERT_TRUE(parsed);
  EXPECT_EQ((*parsed)["a"][2]["b"], "c");
}

TEST(Json, SyntaxErrorsSayWhere) {
  auto parsed = parse_json("{\n  \"a\": 1,\n  \"b\": tru\n}");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().kind, JsonError::Kind::kSyntax);
  EXPECT_EQ(parsed.error().line, 3u);
  EXPECT_EQ(parsed.error().message.rfind("line 3, column", 0), 0u) << parsed.error().message;
  EXPECT_EQ(parse_json("").error().line, 1u);
  EXPECT_FALSE(parse_json("{\"a\":1,}"));   // trailing comma, as in the seed's example
  EXPECT_FALSE(parse_json("{\"a\":1} x"));  // garbage after the value
  EXPECT_FALSE(parse_json("\"\xff\""));     // invalid UTF-8
  EXPECT_FALSE(parse_json("{\"a\":"));      // truncated
}

TEST(Json, RefusesTooLargeBeforeParsing) {
  auto parsed = parse_json(std::string(2000, ' ') + "{}", {1000, 32});
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().kind, JsonError::Kind::kTooLarge);
}

TEST(Json, RefusesDeepNesting) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto parsed = parse_json(deep, {1 << 20, 32});
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().kind, JsonError::Kind::kTooDeep);
  EXPECT_EQ(parsed.error().column, 33u);
  // Brackets inside strings do not count, escaped quotes do not end strings.
  EXPECT_TRUE(parse_json(R"({"a": "[[[[[[[[[[\"[[[[["})", {1 << 20, 2}));
  EXPECT_TRUE(parse_json("[[[]]]", {100, 3}));
  EXPECT_FALSE(parse_json("[[[[]]]]", {100, 3}));
}

TEST(Json, FindsOverlongStringsAndKeys) {
  const auto value = nlohmann::json::parse(R"({"a": [1, "short", {"b": "0123456789"}]})");
  EXPECT_EQ(find_long_string(value, 10), std::nullopt);
  EXPECT_EQ(find_long_string(value, 9), "/a/2/b");
  nlohmann::json keyed = {{std::string(20, 'k'), 1}};
  EXPECT_TRUE(find_long_string(keyed, 10).has_value());
}

TEST(Json, RefusesNumbersNoDoubleHolds) {
  for (const char* text : {R"({"n":1e999})", R"({"n":-1e999})", "[1E400]", "1e99999999999"}) {
    auto parsed = parse_json(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().kind, JsonError::Kind::kInvalid) << text;
    EXPECT_NE(parsed.error().message.find("number out of range"), std::string::npos)
        << parsed.error().message;
  }
  auto where = parse_json("{\n \"a\": 1,\n \"n\": 1e999}");
  ASSERT_FALSE(where);
  EXPECT_EQ(where.error().line, 3u);
  // Large but finite numbers and huge integers are fine (they become doubles).
  EXPECT_TRUE(parse_json("[1e308, 123456789012345678901234567890, -0, 5e-324]"));
}

TEST(Json, ErrorMessagesHoldNoRawBytes) {
  // nlohmann repeats the bytes it read last ("last read: '...'"); invalid UTF-8 there would
  // make the error body itself unencodable.
  for (const std::string& text :
       {std::string("{\"a\":\"\xff\xfe\"}"), std::string("\"\xc3\""),
        std::string("{\"a\":\"\x01\"}"), std::string("[\"\xed\xa0\x80\"]"),
        std::string("{\"\xff\": 1}"), std::string("\x80\x80")}) {
    auto parsed = parse_json(text);
    ASSERT_FALSE(parsed);
    const std::string& message = parsed.error().message;
    for (const char c : message) {
      const auto byte = static_cast<unsigned char>(c);
      EXPECT_TRUE(byte >= 0x20 && byte < 0x7F) << "byte " << int(byte) << " in " << message;
    }
    EXPECT_NO_THROW((void)nlohmann::json(message).dump());
  }
}

TEST(Json, RefusesDuplicateKeys) {
  auto parsed = parse_json(R"({"a": 1, "b": {"c": 1, "c": 2}})");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().kind, JsonError::Kind::kInvalid);
  EXPECT_EQ(parsed.error().message, "duplicate key \"c\"");
  EXPECT_FALSE(parse_json(R"({"a": 1, "a": 1})"));
  // The same key in sibling objects, or in an object and its parent, is not a repeat.
  EXPECT_TRUE(parse_json(R"({"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]})"));
  // A repeated key's text is escaped in the message.
  auto control = parse_json("{\"\\u0001\":1,\"\\u0001\":2}");
  ASSERT_FALSE(control);
  EXPECT_EQ(control.error().message, "duplicate key \"\\x01\"");
}

TEST(Json, RefusesNulCharactersInStringsAndKeys) {
  auto value = parse_json(R"({"items": [{"sku": "SKU\u0000-1"}]})");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().kind, JsonError::Kind::kInvalid);
  EXPECT_NE(value.error().message.find("/items/0/sku"), std::string::npos) << value.error().message;
  EXPECT_FALSE(parse_json(R"({"a\u0000b": 1})"));
  EXPECT_FALSE(parse_json(R"("\u0000")"));
  // Other escaped control characters are valid JSON and stay allowed.
  EXPECT_TRUE(parse_json(R"({"a": "tab\tand\u0001"})"));
}

TEST(Json, DumpNeverThrows) {
  nlohmann::json value = {{"message", std::string("bad \xff byte")}};
  EXPECT_THROW((void)value.dump(), nlohmann::json::type_error);
  EXPECT_EQ(dump_json(value), "{\"message\":\"bad \xef\xbf\xbd byte\"}");
}

TEST(Json, LineAndColumn) {
  EXPECT_EQ(line_and_column("ab\ncd", 0), (std::pair<std::size_t, std::size_t>{1, 1}));
  EXPECT_EQ(line_and_column("ab\ncd", 4), (std::pair<std::size_t, std::size_t>{2, 2}));
}

}  // namespace
}  // namespace stargate
