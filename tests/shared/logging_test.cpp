// Tests of shared/logging.cpp: the three line formats, read back from a redirected stderr.
#include "shared/logging.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace stargate {
namespace {

// Captures what the default logger writes to stderr while it lives.
class StderrCapture {
 public:
  StderrCapture() {
    path_ = ::testing::TempDir() + "/stderr-" + std::to_string(::getpid());
    saved_ = ::dup(2);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  std::string text() {
    restore();
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  void restore() {
    if (saved_ >= 0) {
      ::dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
    }
  }
  std::string path_;
  int saved_ = -1;
};

TEST(Logging, JsonLinesAreValidJson) {
  std::string text;
  {
    StderrCapture capture;
    ASSERT_TRUE(setup_logging({LogFormat::kJson, "info", "test"}));
    spdlog::info("quote \" backslash \\ newline \n end");
    spdlog::debug("hidden");
    text = capture.text();
  }
  const auto record = nlohmann::json::parse(text.substr(0, text.find('\n', text.find("end"))));
  EXPECT_EQ(record["level"], "info");
  EXPECT_EQ(record["logger"], "test");
  EXPECT_EQ(record["msg"], "quote \" backslash \\ newline \n end");
  EXPECT_TRUE(record.contains("time"));
  EXPECT_EQ(text.find("hidden"), std::string::npos);
}

// What a thread works on goes into each JSON record it logs, and only while its scope lasts.
TEST(Logging, JsonLinesCarryTheFieldsOfTheirScope) {
  std::string text;
  {
    StderrCapture capture;
    ASSERT_TRUE(setup_logging({LogFormat::kJson, "info", "test"}));
    {
      LogScope outer({"corr-1", "acme", "cp-1", ""});
      log_fields().process_id = "PROC-20260114-00001";
      spdlog::info("first");
      {
        LogScope inner({"corr-2", "", "", ""});
        spdlog::info("second");
      }
      spdlog::info("third");
    }
    spdlog::info("fourth");
    text = capture.text();
  }
  std::vector<nlohmann::json> records;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 4u) << text;
  EXPECT_EQ(records[0]["correlationId"], "corr-1");
  EXPECT_EQ(records[0]["tenant"], "acme");
  EXPECT_EQ(records[0]["clientProcessId"], "cp-1");
  EXPECT_EQ(records[0]["processId"], "PROC-20260114-00001");
  EXPECT_EQ(records[1]["correlationId"], "corr-2");
  EXPECT_FALSE(records[1].contains("tenant"));  // empty fields are left out
  EXPECT_EQ(records[2], (nlohmann::json{{"time", records[2]["time"]},
                                        {"level", "info"},
                                        {"logger", "test"},
                                        {"msg", "third"},
                                        {"correlationId", "corr-1"},
                                        {"tenant", "acme"},
                                        {"clientProcessId", "cp-1"},
                                        {"processId", "PROC-20260114-00001"}}));
  EXPECT_FALSE(records[3].contains("correlationId"));
}

// With stderr on the journal, records go to journald with the native protocol (the journal
// fields test, tests/journald/fields.sh, reads them back); without a journald to take them
// (none runs here), each goes to stderr as a line with its priority and no timestamp.
TEST(Logging, JournaldGetsPrioritiesAndNoTimestamps) {
  std::string text;
  {
    StderrCapture capture;
    struct stat st {};
    ASSERT_EQ(fstat(2, &st), 0);
    const std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ::setenv("JOURNAL_STREAM", stream.c_str(), 1);
    EXPECT_TRUE(stderr_is_journal());
    ASSERT_TRUE(setup_logging({LogFormat::kText, "info", "test"}));
    spdlog::warn("disk nearly full");
    spdlog::info("hello");
    ::unsetenv("JOURNAL_STREAM");
    text = capture.text();
  }
  if (::access("/run/systemd/journal/socket", F_OK) == 0) {
    EXPECT_EQ(text, "");  // journald took them
  } else {
    EXPECT_EQ(text, "<4>disk nearly full\n<6>hello\n");
  }
}

TEST(Logging, TerminalLinesCarryTimeAndLevel) {
  std::string text;
  {
    StderrCapture capture;
    ::unsetenv("JOURNAL_STREAM");
    ASSERT_TRUE(setup_logging({LogFormat::kText, "info", "test"}));
    spdlog::error("boom");
    text = capture.text();
  }
  EXPECT_NE(text.find(" error "), std::string::npos) << text;
  EXPECT_NE(text.find("boom\n"), std::string::npos);
  EXPECT_EQ(text.substr(0, 2), "20");  // starts with the year
}

TEST(Logging, RefusesUnknownNames) {
  EXPECT_FALSE(setup_logging({LogFormat::kText, "loud", "test"}));
  EXPECT_FALSE(set_log_level("verbose"));
  EXPECT_TRUE(set_log_level("off"));
  EXPECT_FALSE(parse_log_format("xml"));
  EXPECT_EQ(*parse_log_format("json"), LogFormat::kJson);
}

}  // namespace
}  // namespace stargate
