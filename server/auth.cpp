// Secret hashing and JWT access tokens.
#include "server/auth.hpp"

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

#include "shared/ids.hpp"

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

Expected<std::string> read_key(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
    ::close(fd);
    return fail(path + ": key file is readable by group or others; run: chmod 600 " + path);
  }
  std::string key(256, '\0');
  const ssize_t n = ::read(fd, key.data(), key.size());
  ::close(fd);
  if (n < static_cast<ssize_t>(kKeyBytes)) {
    return fail(path + ": key file holds fewer than 32 bytes");
  }
  key.resize(static_cast<std::size_t>(n));
  return key;
}

Status create_key(const std::string& path) {
  ensure_sodium();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(path + ": cannot create key file: " + std::strerror(errno));
  std::string key(kKeyBytes, '\0');
  randombytes_buf(key.data(), key.size());
  const bool ok =
      ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  sodium_memzero(key.data(), key.size());
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return fail(path + ": cannot write key file: " + std::strerror(errno));
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

Expected<TokenSigner> TokenSigner::from_key_file(const std::string& path, std::string issuer) {
  if (::access(path.c_str(), F_OK) != 0) {
    if (auto created = create_key(path); !created) return Unexpected{created.error()};
  }
  auto key = read_key(path);
  if (!key) return Unexpected{key.error()};
  return TokenSigner(std::move(*key), std::move(issuer));
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
  rc |= jwt_add_grant_int(jwt.get(), "iat", seconds(claims.issued_at));
  rc |= jwt_add_grant_int(jwt.get(), "nbf", seconds(claims.issued_at));
  rc |= jwt_add_grant_int(jwt.get(), "exp", seconds(claims.expires_at));
  rc |= jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(key_.data()),
                    static_cast<int>(key_.size()));
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
  if (jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(key_.data()),
                 static_cast<int>(key_.size())) != 0 ||
      raw == nullptr) {
    return fail("signature invalid or token malformed");
  }
  JwtPtr jwt(raw);
  if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256) return fail("unexpected token algorithm");
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
  if (has_nbf && now_s < nbf) return fail("token not yet valid");
  const char* sub = jwt_get_grant(jwt.get(), "sub");
  const char* tenant = jwt_get_grant(jwt.get(), "tenant");
  const char* scope = jwt_get_grant(jwt.get(), "scope");
  const char* jti = jwt_get_grant(jwt.get(), "jti");
  if (sub == nullptr || tenant == nullptr || scope == nullptr) return fail("token lacks claims");
  TokenClaims claims;
  claims.client_id = sub;
  claims.tenant = tenant;
  claims.scopes = split_scopes(scope);
  claims.token_id = jti != nullptr ? jti : "";
  claims.expires_at = TimePoint{std::chrono::seconds{exp}};
  errno = 0;
  const long iat = jwt_get_grant_int(jwt.get(), "iat");
  if (errno == 0) claims.issued_at = TimePoint{std::chrono::seconds{iat}};
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

std::string scope_for(std::string_view process_type) {
  return "process:" + std::string(process_type);
}

}  // namespace stargate::server
