// The gateway's OpenAPI document (docs/openapi/gateway.json) against the gateway itself: it
// is served as it is in the repository, without a token, and it names every route the
// gateway registers (its route table) and no other, and every error code. Its validity as
// OpenAPI 3.1 is checked by an independent validator (tests/openapi/validate.sh).
#include <set>

#include "shared/errors.hpp"
#include "tests/server/http_api_fixture.hpp"

namespace stargate::server::fixtures {
namespace {

using json = nlohmann::json;

json document_in_repository() {
  return json::parse(
      test::read_file(std::string(STARGATE_SOURCE_DIR) + "/docs/openapi/gateway.json"));
}

class OpenApiTest : public HttpApiTest {};

TEST_F(OpenApiTest, IsServedWithoutATokenAsInTheRepository) {
  auto res = client_->Get("/api/stargate/openapi.json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(res->body), document_in_repository());
  EXPECT_EQ(json::parse(res->body).value("openapi", ""), "3.1.0");
}

TEST_F(OpenApiTest, NamesEveryRouteTheGatewayServesAndNoOther) {
  const json paths = document_in_repository()["paths"];
  std::set<std::string> served;
  for (const auto& route : api_->routes()) {
    served.insert(route.method + " " + route.path);
    EXPECT_TRUE(paths.contains(route.path) && paths[route.path].contains(route.method))
        << route.method << " " << route.path << " is served but not in docs/openapi/gateway.json";
  }
  for (const auto& [path, operations] : paths.items()) {
    for (const auto& [method, operation] : operations.items()) {
      EXPECT_TRUE(served.count(method + " " + path))
          << method << " " << path << " is in docs/openapi/gateway.json but not served";
      EXPECT_TRUE(operation.contains("operationId")) << method << " " << path;
    }
  }
  EXPECT_GE(served.size(), 10u);
}

TEST_F(OpenApiTest, AFeedSwitchedOffLeavesOnlyItsRouteOut) {
  ServerConfig config = config_;
  config.feed_enabled = false;
  HttpApi without(config, *store_, engine_.get(), signer_, *limiter_, *audit_, metrics_);
  std::set<std::string> paths;
  for (const auto& route : without.routes())
    paths.insert(route.path);
  EXPECT_EQ(paths.count("/api/stargate/processes/changes"), 0u);
  EXPECT_EQ(without.routes().size() + 1, api_->routes().size());
}

TEST_F(OpenApiTest, NamesEveryErrorCode) {
  const json codes =
      document_in_repository()["components"]["schemas"]["Error"]["properties"]["error"]["enum"];
  std::set<std::string> documented(codes.begin(), codes.end());
  std::set<std::string> known;
  for (int i = 0; i <= static_cast<int>(ErrorCode::kServiceUnavailable); ++i)
    known.insert(std::string(error_name(static_cast<ErrorCode>(i))));
  EXPECT_EQ(documented, known);
}

// The answers a caller sees name only documented status codes (a sample of each route).
TEST_F(OpenApiTest, AnswersUseDocumentedStatusCodes) {
  const json paths = document_in_repository()["paths"];
  const auto documented = [&](const std::string& path, const std::string& method, int status) {
    return paths[path][method]["responses"].contains(std::to_string(status));
  };
  const auto t = token("acme-order");
  auto submitted = submit(t, order_body("k1"));
  EXPECT_TRUE(documented("/api/stargate/processes", "post", submitted->status));
  EXPECT_TRUE(documented("/api/stargate/processes", "post", submit(t, "{")->status));
  EXPECT_TRUE(documented("/api/stargate/processes", "post", submit("nope", "{}")->status));
  const std::string id = json::parse(submitted->body)["processId"];
  auto status = get(t, "/api/stargate/processes/" + id);
  EXPECT_TRUE(documented("/api/stargate/processes/{processId}", "get", status->status));
  EXPECT_TRUE(documented("/api/stargate/processes/{processId}", "get",
                         get(t, "/api/stargate/processes/PROC-20200101-00009")->status));
  EXPECT_TRUE(documented("/api/stargate/processes/{processId}/retry", "post",
                         client_
                             ->Post("/api/stargate/processes/" + id + "/retry",
                                    {{"Authorization", "Bearer " + t}}, "", "application/json")
                             ->status));
  EXPECT_TRUE(documented("/api/stargate/processes/changes", "get",
                         get(t, "/api/stargate/processes/changes?cursor=x")->status));
  EXPECT_TRUE(
      documented("/oauth/token", "post", token_request({{"grant_type", "password"}})->status));
}

// A path the gateway serves asked with a method it does not take: 405 with the methods it
// does (RFC 9110), whether cpp-httplib routes that method (DELETE), refuses it (TRACE) or
// has never heard of it (QUERY); a path it does not serve stays 404.
TEST_F(OpenApiTest, AnotherMethodOnAServedPathIs405WithAllow) {
  const auto ask = [&](const std::string& method, const std::string& path) {
    httplib::Request request;
    request.method = method;
    request.path = path;
    httplib::Client client("127.0.0.1", port_);
    return client.send(request);
  };
  for (const std::string method : {"DELETE", "PUT", "TRACE", "QUERY", "FROB"}) {
    auto res = ask(method, "/health/live");
    ASSERT_TRUE(res) << method;
    EXPECT_EQ(res->status, 405) << method << " " << res->body;
    EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD") << method;
    EXPECT_EQ(json::parse(res->body).value("error", ""), "METHOD_NOT_ALLOWED") << method;
    auto unknown = ask(method, "/no/such/path");
    ASSERT_TRUE(unknown) << method;
    EXPECT_EQ(unknown->status, 404) << method << " " << unknown->body;
  }
  auto both = ask("DELETE", "/api/stargate/processes?limit=5");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->status, 405);
  EXPECT_EQ(both->get_header_value("Allow"), "GET, HEAD, POST");
  auto retry = ask("GET", "/api/stargate/processes/PROC-20260101-00001/retry");
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 405);
  EXPECT_EQ(retry->get_header_value("Allow"), "POST");
}

}  // namespace
}  // namespace stargate::server::fixtures
