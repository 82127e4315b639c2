// SHA-256 as lowercase hex (libsodium): request fingerprints for idempotency, refresh token
// hashes, and the audit trail's hash chain.
#pragma once

#include <string>
#include <string_view>

namespace stargate::server {

std::string sha256_hex(std::string_view data);

}  // namespace stargate::server
