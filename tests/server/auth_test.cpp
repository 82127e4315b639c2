// Tests of server/auth.cpp: secret hashing and token verification against forged tokens.
#include "server/auth.hpp"

#include <sys/stat.h>

#include <cstring>

#include <gtest/gtest.h>
#include <sodium.h>

#include "tests/support/process.hpp"

namespace stargate::server {
namespace {

using namespace std::chrono_literals;

TokenClaims claims_at(TimePoint now) {
  return {"sgc_0123456789abcdef", "acme", {"process:order"}, now, now + 1h, "jti-1"};
}

std::string base64url(const std::string& text) {
  std::string out(sodium_base64_ENCODED_LEN(text.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(text.data()),
                    text.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

TEST(Auth, SecretsAreHashedWithArgon2id) {
  const auto secret = new_client_secret();
  EXPECT_GE(secret.size(), 43u);
  auto hash = hash_secret(secret);
  ASSERT_TRUE(hash);
  EXPECT_EQ(hash->rfind("$argon2id$", 0), 0u);
  EXPECT_EQ(hash->find(secret), std::string::npos);
  EXPECT_TRUE(verify_secret(*hash, secret));
  EXPECT_FALSE(verify_secret(*hash, secret + "x"));
  EXPECT_FALSE(verify_secret(*hash, ""));
  EXPECT_FALSE(verify_secret("garbage", secret));
  EXPECT_NE(new_client_id(), new_client_id());
}

TEST(Auth, IssuedTokensVerify) {
  TokenSigner signer(std::string(32, 'k'), "stargate-test");
  const auto now = now_utc();
  auto token = signer.issue(claims_at(now));
  ASSERT_TRUE(token);
  auto claims = signer.verify(*token, now);
  ASSERT_TRUE(claims) << claims.error();
  EXPECT_EQ(claims->client_id, "sgc_0123456789abcdef");
  EXPECT_EQ(claims->tenant, "acme");
  EXPECT_EQ(claims->scopes, std::vector<std::string>{"process:order"});
  EXPECT_EQ(claims->token_id, "jti-1");
}

TEST(Auth, RefusesExpiredAndNotYetValidTokens) {
  TokenSigner signer(std::string(32, 'k'), "stargate-test");
  const auto now = now_utc();
  auto token = signer.issue(claims_at(now));
  EXPECT_EQ(signer.verify(*token, now + 1h).error(), "token expired");
  EXPECT_EQ(signer.verify(*token, now - 1min).error(), "token not yet valid");
}

TEST(Auth, RefusesTamperedWrongKeyAndWrongIssuer) {
  TokenSigner signer(std::string(32, 'k'), "stargate-test");
  const auto now = now_utc();
  auto token = *signer.issue(claims_at(now));
  // Change the tenant in the payload, keep the signature.
  const auto first = token.find('.'), second = token.find('.', first + 1);
  const std::string forged_payload =
      base64url(R"({"iss":"stargate-test","sub":"x","tenant":"other","scope":"process:order",)"
                R"("exp":9999999999,"nbf":0})");
  EXPECT_FALSE(
      signer.verify(token.substr(0, first + 1) + forged_payload + token.substr(second), now));
  TokenSigner other(std::string(32, 'z'), "stargate-test");
  EXPECT_FALSE(other.verify(token, now));
  TokenSigner other_issuer(std::string(32, 'k'), "someone-else");
  EXPECT_EQ(other_issuer.verify(token, now).error(), "wrong issuer");
}

TEST(Auth, RefusesAlgNone) {
  TokenSigner signer(std::string(32, 'k'), "stargate-test");
  const std::string header = base64url(R"({"alg":"none","typ":"JWT"})");
  const std::string payload =
      base64url(R"({"iss":"stargate-test","sub":"x","tenant":"acme","scope":"process:order",)"
                R"("exp":9999999999})");
  EXPECT_FALSE(signer.verify(header + "." + payload + ".", now_utc()));
  EXPECT_FALSE(signer.verify(header + "." + payload, now_utc()));
}

TEST(Auth, RefusesMalformedTokens) {
  TokenSigner signer(std::string(32, 'k'), "stargate-test");
  for (const std::string& bad : std::vector<std::string>{
           "", "a", "a.b", "a.b.c", "....", std::string(5000, 'a'), std::string("\0\0\0", 3)}) {
    EXPECT_FALSE(signer.verify(bad, now_utc()));
  }
}

TEST(Auth, KeyFileIsCreatedPrivateAndReused) {
  test::TempDir dir;
  const auto path = dir.file("jwt.key");
  auto first = TokenSigner::from_key_file(path, "iss");
  ASSERT_TRUE(first) << first.error();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto token = first->issue(claims_at(now_utc()));
  auto second = TokenSigner::from_key_file(path, "iss");
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->verify(*token, now_utc()));  // same key after a restart
}

TEST(Auth, KeyFileReadableByOthersIsRefused) {
  test::TempDir dir;
  const auto path = dir.file("jwt.key");
  test::write_file(path, std::string(32, 'k'), 0644);
  auto signer = TokenSigner::from_key_file(path, "iss");
  ASSERT_FALSE(signer);
  EXPECT_NE(signer.error().find("chmod 600"), std::string::npos);
  test::write_file(path, "short", 0600);
  EXPECT_FALSE(TokenSigner::from_key_file(path, "iss"));
}

TEST(Auth, Scopes) {
  EXPECT_EQ(split_scopes("  process:order   process:shipping process:order "),
            (std::vector<std::string>{"process:order", "process:shipping"}));
  EXPECT_EQ(join_scopes({"a", "b"}), "a b");
  EXPECT_EQ(scope_for("order"), "process:order");
}

}  // namespace
}  // namespace stargate::server
