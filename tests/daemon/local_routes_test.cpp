// Tests of the socket API's pure helpers (daemon/local_routes.cpp, daemon/local_api.cpp).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "daemon/local_api.hpp"
#include "daemon/local_routes.hpp"

namespace stargate::daemon {
namespace {

TEST(LocalRoutes, ParsesQueries) {
  auto query = parse_query("state=queued&processType=order&x=a%20b+c&flag");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->at("state"), "queued");
  EXPECT_EQ(query->at("x"), "a b c");
  EXPECT_EQ(query->at("flag"), "");
  EXPECT_TRUE(parse_query("")->empty());
  EXPECT_FALSE(parse_query("a=%"));
  EXPECT_FALSE(parse_query("a=%2"));
  EXPECT_FALSE(parse_query("a=%zz"));
}

TEST(LocalApi, OnlyLocalHostHeaders) {
  EXPECT_FALSE(is_local_host_header(""));
  EXPECT_TRUE(is_local_host_header("LocalHost"));
  EXPECT_TRUE(is_local_host_header("localhost"));
  EXPECT_TRUE(is_local_host_header("stargated"));
  EXPECT_FALSE(is_local_host_header("localhost:8080"));
  EXPECT_FALSE(is_local_host_header("evil.example.com"));
  EXPECT_FALSE(is_local_host_header("127.0.0.1"));
}

TEST(LocalRequests, DecodesASubmitOrSaysWhyNot) {
  auto item = decode_local_submit("application/json",
                                  R"({"processType":"order","clientProcessId":"c-1","data":{}})");
  ASSERT_TRUE(item) << item.error().message;
  EXPECT_EQ(item->process_type, "order");
  EXPECT_EQ(item->client_process_id, "c-1");
  const auto code = [](std::string_view type, std::string_view body) {
    auto decoded = decode_local_submit(type, body);
    return decoded ? std::string("ok") : std::string(error_name(decoded.error().code));
  };
  EXPECT_EQ(code("text/plain", "{}"), "UNSUPPORTED_MEDIA_TYPE");
  EXPECT_EQ(code("application/json", R"({"processType":"order","data":{"n":1e999}})"),
            "INVALID_REQUEST");
  EXPECT_EQ(code("application/json", R"({"processType":"order","data":[]})"), "INVALID_REQUEST");
  EXPECT_EQ(code("application/json", R"({"data":{}})"), "INVALID_REQUEST");
  EXPECT_EQ(code("application/json", R"({"processType":"order","extra":1})"), "INVALID_REQUEST");
  EXPECT_EQ(code("application/json", std::string(kMaxLocalBody + 1, ' ')), "PAYLOAD_TOO_LARGE");
}

// The socket API's OpenAPI document names every route of the table handle() dispatches
// through, and no other (its validity: tests/openapi/validate.sh; the answers: e2e).
TEST(LocalRoutes, TheOpenApiDocumentNamesEveryRouteAndNoOther) {
  std::ifstream file(std::string(STARGATE_SOURCE_DIR) + "/docs/openapi/stargated.json");
  std::stringstream text;
  text << file.rdbuf();
  const auto paths = nlohmann::json::parse(text.str())["paths"];
  std::set<std::string> served;
  for (const auto& route : LocalRoutes::routes()) {
    served.insert(route.method + " " + route.path);
    EXPECT_TRUE(paths.contains(route.path) && paths[route.path].contains(route.method))
        << route.method << " " << route.path << " is served but not in docs/openapi/stargated.json";
  }
  for (const auto& [path, operations] : paths.items()) {
    for (const auto& [method, operation] : operations.items()) {
      EXPECT_EQ(served.count(method + " " + path), 1u)
          << method << " " << path << " is in docs/openapi/stargated.json but not served";
    }
  }
  EXPECT_EQ(served.size(), 10u);
}

}  // namespace
}  // namespace stargate::daemon
