// Credentials and tokens: client secrets hashed with Argon2id (libsodium), and signed JWT
// access tokens (libjwt) whose verification pins the algorithm and checks signature,
// expiry, not-before and issuer itself, since libjwt 1.10 checks none of the claims.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shared/clock.hpp"
#include "shared/duration.hpp"
#include "shared/expected.hpp"

namespace stargate::server {

// A new client id ("sgc_" + 16 hex digits) and secret (32 random bytes, base64url).
std::string new_client_id();
std::string new_client_secret();

// Argon2id hash in libsodium's self-describing string format. Fails only when out of memory.
Expected<std::string> hash_secret(std::string_view secret);
// Constant-time check of a secret against hash_secret()'s output.
bool verify_secret(const std::string& hash, std::string_view secret);

struct TokenClaims {
  std::string client_id;  // sub
  std::string tenant;
  std::vector<std::string> scopes;  // "process:order", ...
  TimePoint issued_at{};
  TimePoint expires_at{};
  std::string token_id;  // jti
  std::string family;    // fam: the refresh token family it was issued with
};

enum class TokenAlgorithm { kHS256, kRS256, kES256 };

std::string_view to_string(TokenAlgorithm algorithm);
Expected<TokenAlgorithm> parse_token_algorithm(std::string_view name);

// Issues and verifies access tokens. HS256 uses one shared 256-bit key; RS256 and ES256 sign
// with a private key and verify with the public one, so gateways that only verify need not
// hold the signing key. Verification accepts only the configured algorithm.
class TokenSigner {
 public:
  // HS256: reads the key file, or creates it (mode 0600, 32 random bytes) when it does not
  // exist. Refuses a key file that group or others can read, or shorter than 32 bytes.
  static Expected<TokenSigner> from_key_file(const std::string& path, std::string issuer);
  // RS256/ES256: PEM files. The private key is optional (verify-only gateway) and must not be
  // readable by group or others.
  static Expected<TokenSigner> from_pem_files(TokenAlgorithm algorithm,
                                              const std::string& private_key_file,
                                              const std::string& public_key_file,
                                              std::string issuer);
  // HS256 with a key in memory.
  TokenSigner(std::string key, std::string issuer)
      : algorithm_(TokenAlgorithm::kHS256),
        signing_key_(key),
        verify_key_(std::move(key)),
        issuer_(std::move(issuer)) {}

  bool can_issue() const { return !signing_key_.empty(); }
  Expected<std::string> issue(const TokenClaims& claims) const;

  // The claims of a valid token; an error (never the token itself) otherwise.
  Expected<TokenClaims> verify(std::string_view token, TimePoint now) const;

  const std::string& issuer() const { return issuer_; }
  TokenAlgorithm algorithm() const { return algorithm_; }

 private:
  TokenSigner(TokenAlgorithm algorithm, std::string signing_key, std::string verify_key,
              std::string issuer)
      : algorithm_(algorithm),
        signing_key_(std::move(signing_key)),
        verify_key_(std::move(verify_key)),
        issuer_(std::move(issuer)) {}

  TokenAlgorithm algorithm_;
  std::string signing_key_;
  std::string verify_key_;
  std::string issuer_;
};

// Remembers the claims of tokens verified recently, so that a client polling with the same
// token does not pay for its signature check on every request. Expiry and not-before are
// still checked each time; revocation is checked by the caller on every request anyway.
class TokenCache {
 public:
  explicit TokenCache(std::size_t capacity = 10000) : capacity_(capacity) {}
  // The claims of `token` if it verified before and is still within its validity.
  std::optional<TokenClaims> find(const std::string& token, TimePoint now) const;
  void remember(const std::string& token, const TokenClaims& claims);

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, TokenClaims> claims_;
};

// A new refresh token (32 random bytes, base64url) and the hash the store keeps of it.
// Refresh tokens are random and long, so a fast SHA-256 suffices (no password hashing).
std::string new_refresh_token();
std::string hash_token(std::string_view token);

// Splits "process:order process:shipping" into entries; duplicates removed, order kept.
std::vector<std::string> split_scopes(std::string_view text);
std::string join_scopes(const std::vector<std::string>& scopes);

}  // namespace stargate::server
