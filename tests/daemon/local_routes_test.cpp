// Tests of the socket API's pure helpers (daemon/local_routes.cpp, daemon/local_api.cpp).
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace stargate::daemon
