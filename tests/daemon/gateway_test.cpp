// Tests of daemon/gateway.cpp: how answers are classified, Retry-After, and the secret file.
#include "daemon/gateway.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/support/process.hpp"

namespace stargate::daemon {
namespace {

using namespace std::chrono_literals;

TEST(Gateway, ClassifiesAnswers) {
  EXPECT_EQ(classify(202, true), Outcome::kOk);
  EXPECT_EQ(classify(200, false), Outcome::kOk);
  for (int permanent : {400, 403, 409, 413, 415, 422}) {
    EXPECT_EQ(classify(permanent, true), Outcome::kPermanent) << permanent;
  }
  for (int transient : {0, 408, 429, 500, 502, 503, 504, 302, 418}) {
    EXPECT_EQ(classify(transient, true), Outcome::kTransient) << transient;
  }
  EXPECT_EQ(classify(401, true), Outcome::kUnauthorized);
  EXPECT_EQ(classify(404, false), Outcome::kNotFound);
  EXPECT_EQ(classify(404, true), Outcome::kTransient);  // a wrong URL must not drop requests
}

TEST(Gateway, RetryAfter) {
  EXPECT_EQ(parse_retry_after("30"), 30s);
  EXPECT_EQ(parse_retry_after("0"), 0s);
  EXPECT_EQ(parse_retry_after("999999999"), 86400s);
  EXPECT_FALSE(parse_retry_after(""));
  EXPECT_FALSE(parse_retry_after("-1"));
  EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  EXPECT_FALSE(parse_retry_after("99999999999999999999"));
}

TEST(Gateway, SecretFileMustBePrivate) {
  test::TempDir dir;
  const auto path = dir.file("client_secret");
  test::write_file(path, "s3cret\n", 0600);
  EXPECT_EQ(*read_client_secret(path), "s3cret");
  test::write_file(path, "s3cret\n", 0644);
  auto refused = read_client_secret(path);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("mode 0644"), std::string::npos) << refused.error();
  EXPECT_NE(refused.error().find("chmod 600 " + path), std::string::npos);
  EXPECT_EQ(refused.error().find("s3cret"), std::string::npos);
  test::write_file(path, "s3cret\n", 0640);
  EXPECT_FALSE(read_client_secret(path));
  test::write_file(path, "\n", 0600);
  EXPECT_FALSE(read_client_secret(path));
  EXPECT_FALSE(read_client_secret(dir.file("missing")));
}

TEST(Gateway, SecretFromSystemdCredentials) {
  test::TempDir dir;
  test::write_file(dir.file("client_secret"), "from-systemd", 0400);
  ::setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
  auto secret = read_client_secret("");
  ::unsetenv("CREDENTIALS_DIRECTORY");
  ASSERT_TRUE(secret) << secret.error();
  EXPECT_EQ(*secret, "from-systemd");
  EXPECT_FALSE(read_client_secret(""));
}

}  // namespace
}  // namespace stargate::daemon
