// Credentials and tokens: client secrets hashed with Argon2id (libsodium), and signed JWT
// access tokens (libjwt) whose verification pins the algorithm and checks signature,
// expiry, not-before and issuer itself, since libjwt 1.10 checks none of the claims.
#pragma once

#include <string>
#include <string_view>
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
};

// Issues and verifies HS256 tokens with a 256-bit key kept in a file.
class TokenSigner {
 public:
  // Reads the key file, or creates it (mode 0600, 32 random bytes) when it does not exist.
  // Refuses a key file that group or others can read, or that is shorter than 32 bytes.
  static Expected<TokenSigner> from_key_file(const std::string& path, std::string issuer);
  TokenSigner(std::string key, std::string issuer)
      : key_(std::move(key)), issuer_(std::move(issuer)) {}

  Expected<std::string> issue(const TokenClaims& claims) const;

  // The claims of a valid token; an error (never the token itself) otherwise.
  Expected<TokenClaims> verify(std::string_view token, TimePoint now) const;

  const std::string& issuer() const { return issuer_; }

 private:
  std::string key_;
  std::string issuer_;
};

// Splits "process:order process:shipping" into entries; duplicates removed, order kept.
std::vector<std::string> split_scopes(std::string_view text);
std::string join_scopes(const std::vector<std::string>& scopes);
std::string scope_for(std::string_view process_type);  // "process:" + type

}  // namespace stargate::server
