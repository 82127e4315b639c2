// A fast copy of what decides whether a signed token still works, kept in the system of
// record (MongoDB): the clients that exist and the revocations of clients and token
// families. It is checked on every request, so that a revoked client or family is refused
// by every gateway at once without a read of the record. It may be lost at any time: a copy
// that was never built (or was lost) says so, and the caller asks the record and builds it
// again. Both only grow (clients are revoked, never deleted).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "shared/expected.hpp"

namespace stargate::server {

class RevocationIndex {
 public:
  struct Sizes {
    std::size_t clients = 0;
    std::size_t revocations = 0;
  };

  virtual ~RevocationIndex() = default;
  // Whether a token of `client` and `family` works: the client is known and neither is
  // revoked. nullopt when the copy is not built.
  virtual Expected<std::optional<bool>> usable(const std::string& client,
                                               const std::string& family) = 0;
  virtual Status add_client(const std::string& client) = 0;
  // "client:ID" or "family:ID".
  virtual Status add_revocation(const std::string& member) = 0;
  // Builds the copy from everything in the record.
  virtual Status rebuild(const std::vector<std::string>& clients,
                         const std::vector<std::string>& revocations) = 0;
  // What the copy holds, to compare with the record.
  virtual Expected<Sizes> sizes() = 0;
};

}  // namespace stargate::server
