// Fuzz target: access-token verification (libjwt underneath, with the algorithm pinned and
// expiry, not-before and issuer checked by us). Seeds include real tokens to mutate.
#include <cstdint>
#include <string>

#include "server/gateway/auth.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace stargate;
using namespace stargate::server;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const TokenSigner signer(std::string(32, 'k'), "stargate-server");
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  const auto now = now_utc();
  const auto verified = signer.verify(token, now);
  if (verified) {
    fuzz::check(verified->expires_at > now, "an expired token verified");
  } else {
    // A short fixed reason: never the token, nor anything taken from it.
    fuzz::check_message(verified.error());
    fuzz::check(verified.error().size() <= 40, "a long verification error", verified.error());
  }
  return 0;
}
