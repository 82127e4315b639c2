// Tests of shared/config.cpp: typed reads, and errors that name file, line and key.
#include "shared/config.hpp"

#include <gtest/gtest.h>

namespace stargate {
namespace {

using namespace std::chrono_literals;

TEST(Config, ReadsTypedValuesWithDefaults) {
  auto reader = ConfigReader::parse(R"(
[gateway]
url = "https://gw.example.com"
[polling]
fast_interval = "30s"
alert_after = 7
verbose = true
[socket]
mode = "0660"
[order.stock]
SKU-001 = 5
[process_types.order]
[process_types.shipping]
timeout = "20m"
)",
                                    "test.toml");
  ASSERT_TRUE(reader) << reader.error();
  EXPECT_EQ(reader->string("gateway.url"), "https://gw.example.com");
  EXPECT_EQ(reader->string("gateway.token_url", "fallback"), "fallback");
  EXPECT_EQ(reader->duration("polling.fast_interval", 1s), 30s);
  EXPECT_EQ(reader->duration("polling.slow_interval", 60s), 60s);
  EXPECT_EQ(reader->integer("polling.alert_after", 5, 1, 100), 7);
  EXPECT_TRUE(reader->boolean("polling.verbose", false));
  EXPECT_EQ(reader->file_mode("socket.mode", 0600), 0660u);
  EXPECT_EQ(reader->integer_table("order.stock").at("SKU-001"), 5);
  EXPECT_EQ(reader->table_names("process_types"), (std::vector<std::string>{"order", "shipping"}));
  EXPECT_EQ(reader->duration("process_types.shipping.timeout", 10min), 20min);
  reader->reject_unknown_keys();
  EXPECT_TRUE(reader->ok()) << reader->error_text();
}

TEST(Config, ErrorsNameFileLineAndKey) {
  auto reader = ConfigReader::parse(
      "[polling]\n\nfast_interval = 30\nslow_interval = \"1 minute\"\n", "stargated.toml");
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->duration("polling.fast_interval", 30s), 30s);  // falls back
  reader->duration("polling.slow_interval", 60s);
  ASSERT_EQ(reader->errors().size(), 2u);
  EXPECT_EQ(reader->errors()[0],
            "stargated.toml:3: polling.fast_interval: expected a string, found an integer");
  EXPECT_EQ(
      reader->errors()[1].rfind("stargated.toml:4: polling.slow_interval: invalid duration", 0), 0u)
      << reader->errors()[1];
}

TEST(Config, UnknownKeysAreErrors) {
  auto reader =
      ConfigReader::parse("[gateway]\nurl = \"x\"\nurll = \"typo\"\n[extra]\na = 1\n", "f.toml");
  ASSERT_TRUE(reader);
  reader->string("gateway.url");
  reader->reject_unknown_keys();
  ASSERT_EQ(reader->errors().size(), 2u);
  EXPECT_EQ(reader->errors()[0], "f.toml:5: extra.a: unknown key");
  EXPECT_EQ(reader->errors()[1], "f.toml:3: gateway.urll: unknown key");
}

TEST(Config, EmptyKnownTablesAreFineEmptyUnknownOnesAreNot) {
  auto reader = ConfigReader::parse("[polling]\n# all commented\n[bogus]\n", "f.toml");
  ASSERT_TRUE(reader);
  reader->duration("polling.fast_interval", std::chrono::seconds(30));
  reader->reject_unknown_keys();
  ASSERT_EQ(reader->errors().size(), 1u);
  EXPECT_EQ(reader->errors()[0], "f.toml:3: bogus: unknown key");
}

TEST(Config, RangesAndRequiredKeys) {
  auto reader = ConfigReader::parse("n = 500\nmode = \"999\"\n", "f.toml");
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->integer("n", 5, 1, 100), 5);
  EXPECT_EQ(reader->file_mode("mode", 0600), 0600u);
  reader->require("missing.key");
  ASSERT_EQ(reader->errors().size(), 3u);
  EXPECT_EQ(reader->errors()[0], "f.toml:1: n: must be between 1 and 100");
  EXPECT_EQ(reader->errors()[2], "f.toml: missing required key missing.key");
}

TEST(Config, SyntaxErrorsNameTheFileAndLine) {
  auto reader = ConfigReader::parse("[gateway]\nurl = \"unterminated\n", "broken.toml");
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().find("broken.toml"), std::string::npos) << reader.error();
  EXPECT_NE(reader.error().find("2"), std::string::npos) << reader.error();
  EXPECT_FALSE(ConfigReader::parse("a = 1\na = 2\n", "dup.toml"));
  EXPECT_FALSE(ConfigReader::parse(std::string(100000, '['), "deep.toml"));
}

// toml11 recurses for each level of nesting and slows down badly with each part of a
// dotted key: such files are refused before it sees them, naming the line.
TEST(Config, HostileNestingIsRefusedBeforeParsing) {
  const std::string deep_array =
      "a = 1\nb = " + std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(ConfigReader::parse(deep_array, "x.toml").error(),
            "x.toml:2: nested deeper than 32 levels (or a key of more parts)");
  std::string deep_table = "a = ";
  for (int i = 0; i < 50000; ++i)
    deep_table += "{b = ";
  EXPECT_FALSE(ConfigReader::parse(deep_table + "1" + std::string(50000, '}'), "x.toml"));
  std::string dotted;
  for (int i = 0; i < 50000; ++i)
    dotted += "k.";
  EXPECT_FALSE(ConfigReader::parse(dotted + "y = 1\n", "x.toml"));
  EXPECT_FALSE(ConfigReader::parse("[" + dotted + "y]\n", "x.toml"));
  // Brackets and dots inside strings and comments are not nesting.
  const std::string many(40, '[');
  auto fine = ConfigReader::parse("a = \"" + many + "\"\nb = '" + many + "' # " + many +
                                      "\nc = \"\"\"x\\\n" + many + "\"\"\"\nd = \"" +
                                      std::string(100, '.') + "\"\n",
                                  "x.toml");
  ASSERT_TRUE(fine) << fine.error();
  EXPECT_EQ(fine->string("a"), many);
}

// toml11 reads 0b... by doubling a signed 64-bit value per digit: from the 63rd digit that
// overflows (found by fuzzing) and would have been a wrong number without a word.
TEST(Config, BinaryIntegersToml11CannotReadAreRefused) {
  const std::string longest = "0b" + std::string(61, '0') + "1";
  auto fine = ConfigReader::parse(
      "[a]\nb = " + longest + "\nc = 0b1_0\nk0b" + std::string(70, '0') + " = 1\n", "x.toml");
  ASSERT_TRUE(fine) << fine.error();
  EXPECT_EQ(fine->integer("a.b", 0, 0, 10), 1);
  EXPECT_EQ(fine->integer("a.c", 0, 0, 10), 2);
  const auto refused = ConfigReader::parse(
      "[a]\nb = 0b1" + std::string(30, '0') + "_" + std::string(32, '0') + "\n", "x.toml");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(),
            "x.toml:2: binary integer of more than 62 digits (write it in decimal or hexadecimal)");
  // Inside a string or a comment it is text.
  const std::string digits(100, '0');
  EXPECT_TRUE(ConfigReader::parse("a = \"0b" + digits + "\" # 0b" + digits + "\n", "x.toml"));
}

TEST(Config, AnEndlessFileIsRefusedWithoutReadingItAll) {
  auto reader = ConfigReader::load("/dev/zero");
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error(), "/dev/zero: larger than 1 MiB");
}

TEST(Config, MissingFile) {
  auto reader = ConfigReader::load("/nonexistent/stargated.toml");
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error(), "/nonexistent/stargated.toml: cannot open: No such file or directory");
}

TEST(Config, RefusesTextThatIsNotUtf8BeforeToml11SeesIt) {
  // The fuzzer's input: toml11 3.7 read past its buffer reporting this.
  const std::string text = "a = 1\n'" + std::string(100, '\xff') + "\"'";
  auto reader = ConfigReader::parse(text, "bad.toml");
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error(), "bad.toml:2: not valid UTF-8 (TOML files are UTF-8)");
  EXPECT_TRUE(ConfigReader::parse("name = \"caf\xc3\xa9\"\n", "ok.toml"));
}

}  // namespace
}  // namespace stargate
