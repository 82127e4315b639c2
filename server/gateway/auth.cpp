// Secret hashing and JWT access tokens.
#include "server/gateway/auth.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>

#include <jwt.h>
#include <sodium.h>
#include <nlohmann/json.hpp>

#include "server/common/digest.hpp"
#include "shared/ids.hpp"
#include "shared/text.hpp"

namespace stargate::server {
namespace {

constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kMaxTokenLength = 4096;

struct JwtFree {
  void operator()(jwt_t* jwt) const { jwt_free(jwt); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtFree>;

struct CharFree {
  void operator()(char* text) const { std::free(text); }
};

bool ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

std::string random_hex(std::size_t bytes) {
  ensure_sodium();
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string hex(bytes * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                 raw.size());
  hex.pop_back();
  return hex;
}

// Reads a key file of at most 64 KiB; a private one must not be accessible to others.
Expected<std::string> read_key(const std::string& path, bool is_private) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || (is_private && (st.st_mode & 077) != 0)) {
    ::close(fd);
    return fail(path + ": key file is readable by group or others; run: chmod 600 " + path);
  }
  std::string key(64 * 1024, '\0');
  const ssize_t n = ::read(fd, key.data(), key.size());
  ::close(fd);
  if (n < 0) return fail(path + ": " + std::strerror(errno));
  key.resize(static_cast<std::size_t>(n));
  return key;
}

jwt_alg_t jwt_algorithm(TokenAlgorithm algorithm) {
  switch (algorithm) {
    case TokenAlgorithm::kHS256:
      return JWT_ALG_HS256;
    case TokenAlgorithm::kRS256:
      return JWT_ALG_RS256;
    case TokenAlgorithm::kES256:
      return JWT_ALG_ES256;
  }
  return JWT_ALG_INVAL;
}

// Written under a temporary name and linked into place, so that of several gateways
// starting at once on one state directory, one key wins whole and the others read it.
Status create_key(const std::string& path) {
  ensure_sodium();
  const std::string temporary = path + ".new." + std::to_string(::getpid());
  ::unlink(temporary.c_str());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(path + ": cannot create key file: " + std::strerror(errno));
  std::string key(kKeyBytes, '\0');
  randombytes_buf(key.data(), key.size());
  const bool ok =
      ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  sodium_memzero(key.data(), key.size());
  ::close(fd);
  if (!ok) {
    ::unlink(temporary.c_str());
    return fail(path + ": cannot write key file: " + std::strerror(errno));
  }
  const int linked = ::link(temporary.c_str(), path.c_str());
  const int error = errno;
  ::unlink(temporary.c_str());
  if (linked != 0 && error != EEXIST) {
    return fail(path + ": cannot create key file: " + std::strerror(error));
  }
  return {};
}

}  // namespace

std::string new_client_id() {
  return "sgc_" + random_hex(8);
}

std::string new_client_secret() {
  ensure_sodium();
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  char text[64];
  sodium_bin2base64(text, sizeof text, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  return text;
}

Expected<std::string> hash_secret(std::string_view secret) {
  if (!ensure_sodium()) return fail("libsodium failed to initialise");
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, secret.data(), secret.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return fail("out of memory while hashing a secret");
  }
  return std::string(hash);
}

bool verify_secret(const std::string& hash, std::string_view secret) {
  if (!ensure_sodium() || secret.size() > 1024) return false;
  return crypto_pwhash_str_verify(hash.c_str(), secret.data(), secret.size()) == 0;
}

std::string_view to_string(TokenAlgorithm algorithm) {
  switch (algorithm) {
    case TokenAlgorithm::kHS256:
      return "HS256";
    case TokenAlgorithm::kRS256:
      return "RS256";
    case TokenAlgorithm::kES256:
      return "ES256";
  }
  return "?";
}

Expected<TokenAlgorithm> parse_token_algorithm(std::string_view name) {
  if (name == "HS256") return TokenAlgorithm::kHS256;
  if (name == "RS256") return TokenAlgorithm::kRS256;
  if (name == "ES256") return TokenAlgorithm::kES256;
  return fail("unknown token algorithm '" + escape_text(name, 16) + "' (HS256, RS256 or ES256)");
}

Expected<TokenSigner> TokenSigner::from_key_file(const std::string& path, std::string issuer) {
  if (::access(path.c_str(), F_OK) != 0) {
    if (auto created = create_key(path); !created) return Unexpected{created.error()};
  }
  auto key = read_key(path, true);
  if (!key) return Unexpected{key.error()};
  if (key->size() < kKeyBytes) return fail(path + ": key file holds fewer than 32 bytes");
  return TokenSigner(std::move(*key), std::move(issuer));
}

Expected<TokenSigner> TokenSigner::from_pem_files(TokenAlgorithm algorithm,
                                                  const std::string& private_key_file,
                                                  const std::string& public_key_file,
                                                  std::string issuer) {
  if (algorithm == TokenAlgorithm::kHS256) return fail("HS256 uses a key file, not PEM files");
  if (public_key_file.empty()) return fail("RS256 and ES256 need a public key file");
  auto verify_key = read_key(public_key_file, false);
  if (!verify_key) return Unexpected{verify_key.error()};
  std::string signing_key;
  if (!private_key_file.empty()) {
    auto key = read_key(private_key_file, true);
    if (!key) return Unexpected{key.error()};
    signing_key = std::move(*key);
  }
  TokenSigner signer(algorithm, std::move(signing_key), std::move(*verify_key), std::move(issuer));
  // Prove the keys work together now rather than on the first request.
  const auto now = now_utc();
  if (signer.can_issue()) {
    auto token = signer.issue({"probe", "probe", {}, now, now + std::chrono::minutes(1), "p", "f"});
    if (!token) return fail(private_key_file + ": cannot sign with this key");
    if (auto claims = signer.verify(*token, now); !claims) {
      return fail(public_key_file + ": does not verify what " + private_key_file + " signs (" +
                  claims.error() + ")");
    }
  }
  return signer;
}

std::optional<TokenClaims> TokenCache::find(const std::string& token, TimePoint now) const {
  std::lock_guard lock(mutex_);
  const auto it = claims_.find(token);
  if (it == claims_.end()) return std::nullopt;
  if (now >= it->second.expires_at || now < it->second.issued_at) return std::nullopt;
  return it->second;
}

void TokenCache::remember(const std::string& token, const TokenClaims& claims) {
  std::lock_guard lock(mutex_);
  // Crude but bounded: when full, start over (tokens live an hour; clients re-verify once).
  if (claims_.size() >= capacity_) claims_.clear();
  claims_[token] = claims;
}

std::string new_refresh_token() {
  return new_client_secret();
}

std::string hash_token(std::string_view token) {
  return sha256_hex(token);
}

Expected<std::string> TokenSigner::issue(const TokenClaims& claims) const {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return fail("jwt_new failed");
  JwtPtr jwt(raw);
  const auto seconds = [](TimePoint t) {
    return static_cast<long>(
        std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count());
  };
  int rc = jwt_add_grant(jwt.get(), "iss", issuer_.c_str());
  rc |= jwt_add_grant(jwt.get(), "sub", claims.client_id.c_str());
  rc |= jwt_add_grant(jwt.get(), "tenant", claims.tenant.c_str());
  rc |= jwt_add_grant(jwt.get(), "scope", join_scopes(claims.scopes).c_str());
  rc |= jwt_add_grant(jwt.get(), "jti", claims.token_id.c_str());
  rc |= jwt_add_grant(jwt.get(), "fam", claims.family.c_str());
  rc |= jwt_add_grant_int(jwt.get(), "iat", seconds(claims.issued_at));
  rc |= jwt_add_grant_int(jwt.get(), "nbf", seconds(claims.issued_at));
  rc |= jwt_add_grant_int(jwt.get(), "exp", seconds(claims.expires_at));
  if (!can_issue()) return fail("this gateway holds no signing key");
  rc |= jwt_set_alg(jwt.get(), jwt_algorithm(algorithm_),
                    reinterpret_cast<const unsigned char*>(signing_key_.data()),
                    static_cast<int>(signing_key_.size()));
  if (rc != 0) return fail("cannot build token");
  std::unique_ptr<char, CharFree> encoded(jwt_encode_str(jwt.get()));
  if (!encoded) return fail("cannot sign token");
  return std::string(encoded.get());
}

Expected<TokenClaims> TokenSigner::verify(std::string_view token, TimePoint now) const {
  if (token.empty() || token.size() > kMaxTokenLength) return fail("malformed token");
  const std::string text(token);
  jwt_t* raw = nullptr;
  // jwt_decode checks the signature with the algorithm the token names; pinning the
  // algorithm below is what stops "alg: none" and algorithm confusion.
  if (jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(verify_key_.data()),
                 static_cast<int>(verify_key_.size())) != 0 ||
      raw == nullptr) {
    return fail("signature invalid or token malformed");
  }
  JwtPtr jwt(raw);
  if (jwt_get_alg(jwt.get()) != jwt_algorithm(algorithm_)) {
    return fail("unexpected token algorithm");
  }
  const char* iss = jwt_get_grant(jwt.get(), "iss");
  if (iss == nullptr || issuer_ != iss) return fail("wrong issuer");
  errno = 0;
  const long exp = jwt_get_grant_int(jwt.get(), "exp");
  if (errno != 0) return fail("token has no expiry");
  const long nbf = jwt_get_grant_int(jwt.get(), "nbf");
  const bool has_nbf = errno == 0;
  errno = 0;
  const auto now_s = std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
  if (now_s >= exp) return fail("token expired");
  // Far beyond any lifetime we issue; larger values would overflow TimePoint below.
  if (exp > 253402300799) return fail("token expiry out of range");
  if (has_nbf && now_s < nbf) return fail("token not yet valid");
  const char* sub = jwt_get_grant(jwt.get(), "sub");
  const char* tenant = jwt_get_grant(jwt.get(), "tenant");
  const char* scope = jwt_get_grant(jwt.get(), "scope");
  const char* jti = jwt_get_grant(jwt.get(), "jti");
  const char* fam = jwt_get_grant(jwt.get(), "fam");
  if (sub == nullptr || tenant == nullptr || scope == nullptr) return fail("token lacks claims");
  TokenClaims claims;
  claims.client_id = sub;
  claims.tenant = tenant;
  claims.scopes = split_scopes(scope);
  claims.token_id = jti != nullptr ? jti : "";
  claims.family = fam != nullptr ? fam : "";
  claims.expires_at = TimePoint{std::chrono::seconds{exp}};
  errno = 0;
  const long iat = jwt_get_grant_int(jwt.get(), "iat");
  if (errno == 0 && iat > 0 && iat <= exp) claims.issued_at = TimePoint{std::chrono::seconds{iat}};
  return claims;
}

std::vector<std::string> split_scopes(std::string_view text) {
  std::vector<std::string> scopes;
  std::istringstream in{std::string(text)};
  for (std::string scope; in >> scope;) {
    if (std::find(scopes.begin(), scopes.end(), scope) == scopes.end()) scopes.push_back(scope);
  }
  return scopes;
}

std::string join_scopes(const std::vector<std::string>& scopes) {
  std::string text;
  for (const auto& scope : scopes)
    text += (text.empty() ? "" : " ") + scope;
  return text;
}

}  // namespace stargate::server
