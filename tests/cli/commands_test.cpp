// Tests of cli/commands.cpp's input handling.
#include "cli/commands.hpp"

#include <gtest/gtest.h>

#include "tests/support/process.hpp"

namespace stargate::cli {
namespace {

TEST(CliData, ReadsInlineAndFileData) {
  SubmitOptions options;
  options.data = R"({"orderId":"ORD-1"})";
  EXPECT_EQ((*read_data(options))["orderId"], "ORD-1");
  test::TempDir dir;
  test::write_file(dir.file("order.json"), "{\n  \"orderId\": \"ORD-2\"\n}\n");
  SubmitOptions from_file;
  from_file.data_file = dir.file("order.json");
  EXPECT_EQ((*read_data(from_file))["orderId"], "ORD-2");
  EXPECT_TRUE(read_data(SubmitOptions{})->empty());  // no data: {}
}

TEST(CliData, MalformedDataSaysWhere) {
  SubmitOptions options;
  options.data = "{\"orderId\": \"ORD-1\",\n \"items\": [1, 2,]}";
  auto data = read_data(options);
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().rfind("--data: line 2, column", 0), 0u) << data.error();
  options.data = "[1, 2]";
  EXPECT_EQ(read_data(options).error(), "--data: the data must be a JSON object");
  options.data = std::string(2000, '{');
  EXPECT_NE(read_data(options).error().find("nested deeper"), std::string::npos);
  SubmitOptions missing;
  missing.data_file = "/nonexistent/order.json";
  EXPECT_EQ(read_data(missing).error(),
            "--data-file /nonexistent/order.json: cannot open: No such file or directory");
}

// A file that never ends, a huge one, or a directory: refused without reading it all.
TEST(CliData, EndlessHugeOrDirectoryDataIsRefused) {
  SubmitOptions endless;
  endless.data_file = "/dev/zero";
  EXPECT_EQ(read_data(endless).error(), "/dev/zero: larger than the limit of 1048576 bytes");
  test::TempDir dir;
  test::write_file(dir.file("big.json"), "{\"a\":\"" + std::string(2 << 20, 'x') + "\"}");
  SubmitOptions big;
  big.data_file = dir.file("big.json");
  EXPECT_NE(read_data(big).error().find("larger than the limit"), std::string::npos);
  SubmitOptions directory;
  directory.data_file = dir.path();
  EXPECT_EQ(read_data(directory).error(),
            "--data-file " + dir.path() + ": is a directory, not a file");
}

}  // namespace
}  // namespace stargate::cli
