// The revocation index in Redis: the sets stargate:clients (client ids) and
// stargate:revoked ("client:ID", "family:ID"), and the key stargate:revoked:built, set once
// both hold everything of the record. One script answers a check in one round trip.
#pragma once

#include <memory>

#include "server/store/redis/redis_client.hpp"
#include "server/store/revocation_index.hpp"

namespace stargate::server {

class RedisRevocations final : public RevocationIndex {
 public:
  explicit RedisRevocations(std::shared_ptr<redis::Client> redis)
      : redis_(std::move(redis)),
        clients_(redis_->key("clients")),
        revoked_(redis_->key("revoked")),
        built_(redis_->key("revoked:built")) {}

  Expected<std::optional<bool>> usable(const std::string& client,
                                       const std::string& family) override;
  Status add_client(const std::string& client) override;
  Status add_revocation(const std::string& member) override;
  Status rebuild(const std::vector<std::string>& clients,
                 const std::vector<std::string>& revocations) override;
  Expected<Sizes> sizes() override;

 private:
  Status add_all(const std::string& set, const std::vector<std::string>& members);

  std::shared_ptr<redis::Client> redis_;
  const std::string clients_;  // sets of the clients known and the revoked
  const std::string revoked_;
  const std::string built_;  // set once both are whole
};

}  // namespace stargate::server
