// Tests of server/processes/requests.cpp: the process API's request decoding, apart from HTTP.
#include "server/processes/requests.hpp"

#include <gtest/gtest.h>

namespace stargate::server {
namespace {

constexpr const char* kBody =
    R"({"clientProcessId":"c-1","processType":"order","data":{"orderId":"O-1"}})";

TEST(Requests, DecodesASubmit) {
  auto request = decode_submit("application/json; charset=utf-8", kBody, "k-1", {});
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_EQ(request->client_process_id, "c-1");
  EXPECT_EQ(request->idempotency_key, "k-1");
  // The key does not take part in the hash that replays are compared by.
  auto keyless = decode_submit("application/json", kBody, "", {});
  EXPECT_EQ(request_hash(*request), request_hash(*keyless));
}

TEST(Requests, RefusesBadSubmitsWithTheAnswerToGive) {
  const auto code = [](std::string_view type, std::string_view body, std::string_view key = "",
                       SubmitLimits limits = {}) {
    auto request = decode_submit(type, body, key, limits);
    return request ? std::string("ok") : std::string(error_name(request.error().code));
  };
  EXPECT_EQ(code("text/plain", kBody), "UNSUPPORTED_MEDIA_TYPE");
  EXPECT_EQ(code("application/json", "{"), "INVALID_REQUEST");
  EXPECT_EQ(code("application/json", R"({"n":1e999})"), "INVALID_REQUEST");
  EXPECT_EQ(code("application/json", kBody, "", {16, 64}), "PAYLOAD_TOO_LARGE");
  EXPECT_EQ(code("application/json", kBody, "", {1 << 20, 2}), "INVALID_REQUEST");
  EXPECT_EQ(code("application/json", kBody, "bad key!"), "INVALID_REQUEST");
  EXPECT_EQ(
      code("application/json",
           R"({"clientProcessId":"c-1","processType":"order","data":{},"idempotencyKey":"a"})",
           "b"),
      "INVALID_REQUEST");
}

TEST(Requests, DecodesListParameters) {
  auto query = decode_list_query({{"status", "failed"}, {"limit", "20"}, {"processType", "order"}});
  ASSERT_TRUE(query);
  EXPECT_EQ(query->status, ProcessStatus::kFailed);
  EXPECT_EQ(query->limit, 20u);
  EXPECT_EQ(query->process_type, "order");
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"status", "done"},
                                                        {"limit", "0"},
                                                        {"limit", "101"},
                                                        {"limit", "-1"},
                                                        {"limit", "9999999999"},
                                                        {"processType", "Order!"},
                                                        {"cursor", "x"}}) {
    EXPECT_FALSE(decode_list_query({{name, value}})) << name << "=" << value;
  }
}

TEST(Requests, DecodesChangeFeedParameters) {
  auto query = decode_changes_query({{"cursor", "0a1b-42"}, {"wait", "30s"}, {"limit", "500"}},
                                    std::chrono::seconds(60));
  ASSERT_TRUE(query);
  EXPECT_EQ(query->cursor, "0a1b-42");
  EXPECT_EQ(query->wait, std::chrono::seconds(30));
  EXPECT_EQ(query->limit, 500u);
  auto defaults = decode_changes_query({}, std::chrono::seconds(60));
  EXPECT_TRUE(defaults->cursor.empty());
  EXPECT_EQ(defaults->wait, Duration::zero());
  EXPECT_EQ(defaults->limit, 100u);
  // Seconds alone, and a wait past the cap cut to it.
  EXPECT_EQ(decode_changes_query({{"wait", "45"}}, std::chrono::seconds(60))->wait,
            std::chrono::seconds(45));
  EXPECT_EQ(decode_changes_query({{"wait", "1h"}}, std::chrono::seconds(60))->wait,
            std::chrono::seconds(60));
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"wait", "forever"},
                                                        {"wait", "-5"},
                                                        {"wait", "5x"},
                                                        {"wait", "9999999"},
                                                        {"wait", ""},
                                                        {"limit", "0"},
                                                        {"limit", "501"},
                                                        {"limit", ""},
                                                        {"cursor", "a b"},
                                                        {"cursor", "a/b"},
                                                        {"cursor", std::string("a\0b", 3)},
                                                        {"cursor", std::string(129, 'a')}}) {
    EXPECT_FALSE(decode_changes_query({{name, value}}, std::chrono::seconds(60)))
        << name << "=" << value;
  }
}

TEST(Requests, ReadsBasicCredentials) {
  // "sgc%201:se%3Acr+et", base64
  auto credentials = basic_credentials("Basic c2djJTIwMTpzZSUzQWNyK2V0");
  ASSERT_TRUE(credentials);
  EXPECT_EQ(credentials->first, "sgc 1");
  EXPECT_EQ(credentials->second, "se:cr et");
  EXPECT_FALSE(basic_credentials("Basic !!!"));
  EXPECT_FALSE(basic_credentials("Basic c2djMQ=="));  // no colon
  EXPECT_FALSE(basic_credentials("Bearer abc"));
  EXPECT_FALSE(basic_credentials("Basic " + std::string(2000, 'A')));
}

}  // namespace
}  // namespace stargate::server
