// Tests of server/gateway/auth.cpp: secret hashing and token verification against forged tokens.
#include "server/gateway/auth.hpp"
#include "server/processes/processes.hpp"

#include <sys/stat.h>

#include <cstring>

#include <gtest/gtest.h>
#include <sodium.h>

#include "tests/support/process.hpp"

namespace stargate::server {
namespace {

using namespace std::chrono_literals;

TokenClaims claims_at(TimePoint now) {
  return {"sgc_0123456789abcdef", "acme", {"process:order"}, now, now + 1h, "jti-1", "fam-1"};
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

// Makes a key pair with the openssl CLI, as an operator would.
void make_key_pair(const test::TempDir& dir, const std::string& algorithm) {
  const std::string key = dir.file("private.pem"), pub = dir.file("public.pem");
  const std::vector<std::string> genkey =
      algorithm == "RS256"
          ? std::vector<std::string>{"/usr/bin/openssl",
                                     "genpkey",
                                     "-algorithm",
                                     "RSA",
                                     "-pkeyopt",
                                     "rsa_keygen_bits:2048",
                                     "-out",
                                     key}
          : std::vector<std::string>{
                "/usr/bin/openssl",        "genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-out",    key};
  ASSERT_EQ(test::run(genkey).exit_code, 0);
  ASSERT_EQ(test::run({"/usr/bin/openssl", "pkey", "-in", key, "-pubout", "-out", pub}).exit_code,
            0);
  ::chmod(key.c_str(), 0600);
}

class KeyPairTest : public ::testing::TestWithParam<const char*> {};

TEST_P(KeyPairTest, SignsWithThePrivateKeyVerifiesWithThePublicOne) {
  test::TempDir dir;
  make_key_pair(dir, GetParam());
  const auto algorithm = *parse_token_algorithm(GetParam());
  auto issuer = TokenSigner::from_pem_files(algorithm, dir.file("private.pem"),
                                            dir.file("public.pem"), "iss");
  ASSERT_TRUE(issuer) << issuer.error();
  auto token = issuer->issue(claims_at(now_utc()));
  ASSERT_TRUE(token);
  // A gateway holding only the public key verifies, and cannot issue.
  auto verifier = TokenSigner::from_pem_files(algorithm, "", dir.file("public.pem"), "iss");
  ASSERT_TRUE(verifier) << verifier.error();
  EXPECT_FALSE(verifier->can_issue());
  EXPECT_FALSE(verifier->issue(claims_at(now_utc())));
  auto claims = verifier->verify(*token, now_utc());
  ASSERT_TRUE(claims) << claims.error();
  EXPECT_EQ(claims->tenant, "acme");
  EXPECT_EQ(claims->family, "fam-1");
  // Algorithm confusion: an HS256 token whose HMAC key is the public key PEM.
  TokenSigner confused(test::read_file(dir.file("public.pem")), "iss");
  auto forged = confused.issue(claims_at(now_utc()));
  ASSERT_TRUE(forged);
  EXPECT_EQ(verifier->verify(*forged, now_utc()).error(), "unexpected token algorithm");
  // An HS256 gateway does not take the asymmetric token either.
  TokenSigner hs(std::string(32, 'k'), "iss");
  EXPECT_FALSE(hs.verify(*token, now_utc()));
}

INSTANTIATE_TEST_SUITE_P(Algorithms, KeyPairTest, ::testing::Values("RS256", "ES256"));

TEST(Auth, KeyPairProblemsAreReportedAtStart) {
  test::TempDir dir;
  make_key_pair(dir, "RS256");
  ::chmod(dir.file("private.pem").c_str(), 0644);
  EXPECT_FALSE(TokenSigner::from_pem_files(TokenAlgorithm::kRS256, dir.file("private.pem"),
                                           dir.file("public.pem"), "iss"));
  ::chmod(dir.file("private.pem").c_str(), 0600);
  test::TempDir other;
  make_key_pair(other, "RS256");
  auto mismatched = TokenSigner::from_pem_files(TokenAlgorithm::kRS256, dir.file("private.pem"),
                                                other.file("public.pem"), "iss");
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.error().find("does not verify"), std::string::npos) << mismatched.error();
  EXPECT_FALSE(
      TokenSigner::from_pem_files(TokenAlgorithm::kRS256, "", dir.file("missing.pem"), "iss"));
  EXPECT_FALSE(parse_token_algorithm("none"));
  EXPECT_FALSE(parse_token_algorithm("HS512"));
}

TEST(Auth, RefreshTokensAreRandomAndStoredHashed) {
  const auto a = new_refresh_token(), b = new_refresh_token();
  EXPECT_NE(a, b);
  EXPECT_EQ(hash_token(a).size(), 64u);
  EXPECT_EQ(hash_token(a), hash_token(a));
  EXPECT_NE(hash_token(a), hash_token(b));
}

TEST(Auth, Scopes) {
  EXPECT_EQ(split_scopes("  process:order   process:shipping process:order "),
            (std::vector<std::string>{"process:order", "process:shipping"}));
  EXPECT_EQ(join_scopes({"a", "b"}), "a b");
  EXPECT_EQ(scope_for("order"), "process:order");
}

}  // namespace
}  // namespace stargate::server
