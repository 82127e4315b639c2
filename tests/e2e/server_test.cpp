// stargate-server as a black box: the real binary over real HTTP on loopback, and its admin
// commands against its real database.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "tests/support/stack.hpp"

namespace stargate::test {
namespace {

using nlohmann::json;

constexpr const char* kOrder = R"({"orderId":"ORD-1","items":[{"sku":"SKU-001","quantity":1}]})";

RunResult server_admin(Stack& stack, std::vector<std::string> args) {
  args.insert(args.begin(), binary("stargate-server"));
  args.push_back("--config");
  args.push_back(stack.dir().file("server.toml"));
  return run(args);
}

TEST(Server, AuditVerifyCatchesARecordEditedWithSqlite3) {
  Stack stack;
  ASSERT_EQ(stack.cli({"submit", "order", "--data", kOrder, "--wait"}).exit_code, 0);
  auto intact = server_admin(stack, {"audit", "verify"});
  ASSERT_EQ(intact.exit_code, 0) << intact.err << intact.out;
  EXPECT_NE(intact.out.find("audit trail intact"), std::string::npos);

  auto exported = server_admin(stack, {"audit", "export", "--since", "1h"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::istringstream lines(exported.out);
  int states = 0, admin = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto record = json::parse(line);
    EXPECT_EQ(record["hash"].get<std::string>().size(), 64u);
    if (record["kind"] == "state") ++states;
    if (record["kind"] == "admin") ++admin;
  }
  EXPECT_EQ(states, 3);  // accepted, processing, completed
  EXPECT_EQ(admin, 1);   // client add
  EXPECT_EQ(exported.out.find("client_secret"), std::string::npos);

  const auto db = stack.dir().file("server/stargate-server.db");
  auto edit = run({"/usr/bin/sqlite3", db,
                   "UPDATE audit SET record = replace(record, 'completed', 'failed') "
                   "WHERE record LIKE '%\"to\":\"completed\"%'"});
  ASSERT_EQ(edit.exit_code, 0) << edit.err;
  auto broken = server_admin(stack, {"audit", "verify"});
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_NE(broken.out.find("BROKEN"), std::string::npos) << broken.out;
  EXPECT_EQ(server_admin(stack, {"audit", "export", "--since", "yesterday"}).exit_code, 2);
}

}  // namespace
}  // namespace stargate::test
