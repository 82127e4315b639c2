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

TEST(Json, LineAndColumn) {
  EXPECT_EQ(line_and_column("ab\ncd", 0), (std::pair<std::size_t, std::size_t>{1, 1}));
  EXPECT_EQ(line_and_column("ab\ncd", 4), (std::pair<std::size_t, std::size_t>{2, 2}));
}

}  // namespace
}  // namespace stargate
