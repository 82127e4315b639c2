// The JSON-to-BSON walk the MongoDB client encodes its commands with: byte for byte what
// libbson makes of the same document's JSON text (the route it replaced), and a refusal
// for every value that route treats in its own way, so that the client falls back to it.
#include "server/store/mongo/bson_encode.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace stargate::server::mongo {
namespace {

using nlohmann::json;

struct Bson {
  bson_t* document;
  explicit Bson(bson_t* made) : document(made) {}
  ~Bson() {
    if (document != nullptr) bson_destroy(document);
  }
  std::string bytes() const {
    return document == nullptr
               ? ""
               : std::string(reinterpret_cast<const char*>(bson_get_data(document)), document->len);
  }
};

// What the text route makes: the JSON text of `value`, parsed by libbson.
std::string from_text(const json& value) {
  const auto text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  bson_error_t error;
  Bson parsed(bson_new_from_json(reinterpret_cast<const std::uint8_t*>(text.data()),
                                 static_cast<ssize_t>(text.size()), &error));
  EXPECT_NE(parsed.document, nullptr) << text << ": " << error.message;
  return parsed.bytes();
}

std::string walked(const json& value, bool& encoded) {
  Bson out(bson_new());
  encoded = append_members(out.document, value);
  return out.bytes();
}

TEST(BsonEncode, WalksToTheBytesTheTextRouteMakes) {
  const std::vector<json> documents = {
      json::object(),
      {{"int", 1}, {"negative", -1}, {"zero", 0}},
      {{"int32 max", 2147483647},
       {"past it", 2147483648LL},
       {"int32 min", -2147483648LL},
       {"below it", -2147483649LL},
       {"int64 max", std::numeric_limits<std::int64_t>::max()},
       {"int64 min", std::numeric_limits<std::int64_t>::min()}},
      {{"unsigned", 7u}, {"big unsigned", 9223372036854775807ULL}},
      {{"double", 1.5},
       {"whole double", 1.0},
       {"tiny", 1e-300},
       {"huge", 1.7e308},
       {"negative zero", -0.0},
       {"third", 1.0 / 3}},
      {{"text", "plain"},
       {"unicode", "ünïcødé ✓ 𝄞"},
       {"escapes", "quote \" slash \\ tab \t nl \n"},
       {"empty", ""},
       {"nul inside", std::string("a\0b", 3)}},
      {{"yes", true}, {"no", false}, {"nothing", nullptr}},
      {{"list", {1, "two", 3.5, nullptr, json::array(), json::object(), {{"deep", {1, 2}}}}}},
      {{"$set", {{"status", "completed"}, {"updatedAt", 1767225600000LL}}},
       {"filter", {{"seq", {{"$lt", 5}}}, {"$or", {{{"a", 1}}, {{"b", 2}}}}}}},
      {{"", "an empty key"}, {"dotted.key", 1}},
      {{"insert", "processes"},
       {"documents", {{{"_id", "PROC-20260114-00001"}, {"data", R"({"orderId":"A"})"}}}},
       {"ordered", false}},
  };
  for (const auto& document : documents) {
    bool encoded = false;
    const auto bytes = walked(document, encoded);
    EXPECT_TRUE(encoded) << document.dump();
    EXPECT_EQ(bytes, from_text(document)) << document.dump();
  }
}

// Each of these the text route writes differently from the value (a replacement character,
// null, a typed value) or refuses: the walk declines them all.
TEST(BsonEncode, DeclinesWhatOnlyTheTextRouteEncodesItsWay) {
  const std::vector<json> declined = {
      {{"invalid utf-8", std::string("a\xff") + "b"}},
      {{std::string("key \xc3"), 1}},
      {{"nested", {{"list", {1, std::string("\xc0\xaf")}}}}},
      {{"past int64", std::numeric_limits<std::uint64_t>::max()}},
      {{"nan", std::nan("")}},
      {{"infinity", std::numeric_limits<double>::infinity()}},
      {{"date", {{"$date", 5}}}},
      {{"long", {{"$numberLong", "5"}}}},
      {{"id", {{"$oid", "5f0000000000000000000000"}}}},
      {{std::string("nul\0key", 7), 1}},
      json::array({1, 2}),
      json("not a document"),
  };
  for (const auto& value : declined) {
    bool encoded = true;
    walked(value, encoded);
    EXPECT_FALSE(encoded) << value.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

}  // namespace
}  // namespace stargate::server::mongo
