// Tests of shared/codec.cpp: the gateway API bodies of seed 000 §11.
#include "shared/codec.hpp"

#include <gtest/gtest.h>

namespace stargate {
namespace {

using nlohmann::json;

json valid_submit() {
  return {{"clientProcessId", "8f3c2a4e-7b91-4d8f-9e6a-2c4f8b1d7e53"},
          {"processType", "order"},
          {"data", {{"orderId", "ORD-12345"}, {"items", {{{"sku", "SKU-001"}, {"quantity", 10}}}}}},
          {"idempotencyKey", "5d1c8f0e-1111-4222-8333-944455556666"}};
}

TEST(Codec, SubmitRoundTrip) {
  auto request = parse_submit_request(valid_submit());
  ASSERT_TRUE(request) << request.error();
  EXPECT_EQ(request->process_type, "order");
  EXPECT_EQ(request->data["orderId"], "ORD-12345");
  EXPECT_EQ(to_json(*request), valid_submit());
}

TEST(Codec, SubmitErrorsNameTheField) {
  auto body = valid_submit();
  body.erase("clientProcessId");
  EXPECT_EQ(parse_submit_request(body).error(), "Missing required field: clientProcessId");
  body = valid_submit();
  body.erase("processType");
  EXPECT_EQ(parse_submit_request(body).error(), "Missing required field: processType");
  body = valid_submit();
  body.erase("data");
  EXPECT_EQ(parse_submit_request(body).error(), "Missing required field: data");
  body = valid_submit();
  body["data"] = "text";
  EXPECT_EQ(parse_submit_request(body).error(), "Field 'data' must be an object");
  body = valid_submit();
  body["processType"] = 5;
  EXPECT_EQ(parse_submit_request(body).error(), "Field 'processType' must be a string");
  body = valid_submit();
  body["extra"] = true;
  EXPECT_EQ(parse_submit_request(body).error(), "Unknown field: extra");
  EXPECT_EQ(parse_submit_request(json::array()).error(), "Request body must be a JSON object");
}

TEST(Codec, SubmitRefusesHostileValues) {
  auto body = valid_submit();
  body["processType"] = "../etc";
  EXPECT_FALSE(parse_submit_request(body));
  body["processType"] = std::string(65, 'a');
  EXPECT_FALSE(parse_submit_request(body));
  body = valid_submit();
  body["clientProcessId"] = std::string(129, 'a');
  EXPECT_FALSE(parse_submit_request(body));
  body["clientProcessId"] = "a/b";
  EXPECT_FALSE(parse_submit_request(body));
  body = valid_submit();
  body["idempotencyKey"] = "key with spaces";
  EXPECT_FALSE(parse_submit_request(body));
  body.erase("idempotencyKey");
  EXPECT_TRUE(parse_submit_request(body));  // the key may come as a header instead
}

TEST(Codec, AcceptedBodyMatchesTheSeed) {
  Accepted accepted{"PROC-20260114-00001", "8f3c", "order",
                    *parse_timestamp("2026-01-14T12:48:00Z"),
                    *parse_timestamp("2026-01-14T13:00:00Z")};
  const auto body = to_json(accepted);
  EXPECT_EQ(body["status"], "accepted");
  EXPECT_EQ(body["statusUrl"], "/api/stargate/processes/PROC-20260114-00001");
  EXPECT_EQ(body["createdAt"], "2026-01-14T12:48:00Z");
  EXPECT_EQ(body["estimatedCompletionTime"], "2026-01-14T13:00:00Z");
  auto back = parse_accepted(body);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->process_id, accepted.process_id);
  EXPECT_EQ(back->created_at, accepted.created_at);
  EXPECT_FALSE(parse_accepted({{"processId", "P"}}));
  EXPECT_FALSE(
      parse_accepted({{"processId", "P"}, {"clientProcessId", "c"}, {"createdAt", "yesterday"}}));
  // A required time left empty is an error, not an absent value (it threw).
  const auto empty =
      parse_accepted({{"processId", "P"}, {"clientProcessId", "c"}, {"createdAt", ""}});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error(), "Field 'createdAt' is empty");
}

TEST(Codec, StatusBodiesPerState) {
  ProcessView view;
  view.process_id = "PROC-20260114-00001";
  view.client_process_id = "c";
  view.process_type = "order";
  view.status = ProcessStatus::kProcessing;
  view.progress = 45;
  view.current_step = "inventory_check";
  view.created_at = *parse_timestamp("2026-01-14T12:48:00Z");
  view.updated_at = *parse_timestamp("2026-01-14T12:50:15Z");
  view.estimated_completion = *parse_timestamp("2026-01-14T13:00:00Z");
  auto body = to_json(view);
  EXPECT_EQ(body["status"], "processing");
  EXPECT_EQ(body["progress"], 45);
  EXPECT_EQ(body["currentStep"], "inventory_check");
  EXPECT_TRUE(body["result"].is_null());
  EXPECT_FALSE(body.contains("retryable"));

  view.status = ProcessStatus::kFailed;
  view.error = ProcessError{"INVENTORY_INSUFFICIENT",
                            "Insufficient stock for SKU-001",
                            {{"sku", "SKU-001"}, {"requested", 10}, {"available", 5}}};
  view.retryable = true;
  view.finished_at = *parse_timestamp("2026-01-14T12:52:00Z");
  body = to_json(view);
  EXPECT_EQ(body["error"]["code"], "INVENTORY_INSUFFICIENT");
  EXPECT_EQ(body["error"]["details"]["available"], 5);
  EXPECT_EQ(body["failedAt"], "2026-01-14T12:52:00Z");
  EXPECT_EQ(body["retryable"], true);
  auto back = parse_process_view(body);
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->status, ProcessStatus::kFailed);
  EXPECT_EQ(back->error->details["requested"], 10);
  EXPECT_EQ(back->finished_at, view.finished_at);
}

TEST(Codec, StatusParsingRefusesWrongTypes) {
  json body = {{"processId", "P"}, {"status", "done"}};
  EXPECT_NE(parse_process_view(body).error().find("status"), std::string::npos);
  body = {{"processId", "P"}, {"status", "processing"}, {"progress", "45"}};
  EXPECT_EQ(parse_process_view(body).error(), "Field 'progress' must be a number");
  body = {{"processId", "P"}, {"status", "failed"}, {"error", "boom"}};
  EXPECT_FALSE(parse_process_view(body));
  body = {{"processId", "P"}, {"status", "failed"}, {"retryable", "yes"}};
  EXPECT_FALSE(parse_process_view(body));
  body = {{"processId", "P"}, {"status", "processing"}, {"progress", 1e300}};
  EXPECT_EQ(parse_process_view(body)->progress, 100);  // clamped, not undefined
  EXPECT_FALSE(parse_process_view(json(nullptr)));
}

TEST(Codec, TokenAnswers) {
  auto answer = parse_token_answer(json::parse(
      R"({"access_token":"a.b.c","expires_in":600,"scope":"process:order other process:Bad! process:ship_2"})"));
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(answer->access_token, "a.b.c");
  EXPECT_EQ(answer->expires_in, 600);
  EXPECT_EQ(answer->process_types, (std::vector<std::string>{"order", "ship_2"}));
  // Without scope nothing is said about types; a lifetime out of range is clamped.
  auto plain = parse_token_answer(json::parse(R"({"access_token":"t","expires_in":99999999999})"));
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->process_types);
  EXPECT_EQ(plain->expires_in, 86400 * 30);
  // A token that would break the Authorization header it goes into is refused.
  EXPECT_FALSE(parse_token_answer(json::parse(R"({"access_token":"a\r\nX-Injected: 1"})")));
  EXPECT_FALSE(parse_token_answer(json::parse(R"({"access_token":""})")));
  EXPECT_FALSE(parse_token_answer(json::parse(R"({"access_token":5})")));
  EXPECT_FALSE(parse_token_answer(json::parse("[]")));
}

TEST(Codec, ChangeFeedAnswers) {
  auto page = parse_changes_answer(json::parse(R"({"changes":[
      {"processId":"P1","status":"completed","result":{"ok":true}},
      {"processId":"P2","status":"exploded"}, 7],
      "cursor":"e-42","more":true,"retryAfter":99999})"));
  ASSERT_TRUE(page) << page.error();
  ASSERT_EQ(page->changes.size(), 1u);
  EXPECT_EQ(page->changes[0].process_id, "P1");
  EXPECT_EQ(page->unreadable, 2u);  // left out, counted, not fatal
  EXPECT_EQ(page->cursor, "e-42");
  EXPECT_TRUE(page->more);
  EXPECT_EQ(page->retry_after_seconds, 3600);  // capped
  auto plain = parse_changes_answer(json::parse(R"({"changes":[],"cursor":"c"})"));
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->more);
  EXPECT_FALSE(plain->retry_after_seconds);
  for (const char* bad :
       {R"({"changes":[]})", R"({"changes":[],"cursor":""})", R"({"changes":{},"cursor":"c"})",
        R"({"cursor":"c"})", R"({"changes":[],"cursor":7})", "[]", "null"}) {
    EXPECT_FALSE(parse_changes_answer(json::parse(bad))) << bad;
  }
  EXPECT_FALSE(
      parse_changes_answer(json{{"changes", json::array()}, {"cursor", std::string(129, 'c')}}));
}

}  // namespace
}  // namespace stargate
