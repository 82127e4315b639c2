#include "server/store/redis/redis_revocations.hpp"

#include <algorithm>

namespace stargate::server {
namespace {

// KEYS: clients, revoked, built; ARGV: client id, "client:ID", "family:ID".
// -1: not built; 1: usable; 0: unknown client or revoked.
constexpr const char* kCheck = R"lua(
if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then return 0 end
return 1
)lua";

}  // namespace

Expected<std::optional<bool>> RedisRevocations::usable(const std::string& client,
                                                       const std::string& family) {
  auto reply = redis_->eval(kCheck, {clients_, revoked_, built_},
                            {client, "client:" + client, "family:" + family});
  if (!reply) return Unexpected{reply.error()};
  if (reply->type != redis::Reply::Type::kInteger) return fail("redis: unexpected answer");
  if (reply->integer < 0) return std::optional<bool>{};
  return std::optional<bool>{reply->integer == 1};
}

Status RedisRevocations::add_client(const std::string& client) {
  return add_all(clients_, {client});
}

Status RedisRevocations::add_revocation(const std::string& member) {
  return add_all(revoked_, {member});
}

Status RedisRevocations::add_all(const std::string& set, const std::vector<std::string>& members) {
  constexpr std::size_t kBatch = 500;
  for (std::size_t start = 0; start < members.size(); start += kBatch) {
    const auto end = std::min(members.size(), start + kBatch);
    std::vector<std::string> args = {"SADD", set};
    args.insert(args.end(), members.begin() + static_cast<std::ptrdiff_t>(start),
                members.begin() + static_cast<std::ptrdiff_t>(end));
    if (auto added = redis_->command(args); !added) return Unexpected{added.error()};
  }
  return {};
}

Status RedisRevocations::rebuild(const std::vector<std::string>& clients,
                                 const std::vector<std::string>& revocations) {
  if (auto added = add_all(revoked_, revocations); !added) return added;
  if (auto added = add_all(clients_, clients); !added) return added;
  auto built = redis_->command({"SET", built_, "1"});
  if (!built) return Unexpected{built.error()};
  return {};
}

Expected<RevocationIndex::Sizes> RedisRevocations::sizes() {
  Sizes sizes;
  auto clients = redis_->command({"SCARD", clients_});
  if (!clients) return Unexpected{clients.error()};
  auto revoked = redis_->command({"SCARD", revoked_});
  if (!revoked) return Unexpected{revoked.error()};
  sizes.clients = static_cast<std::size_t>(std::max<std::int64_t>(0, clients->integer));
  sizes.revocations = static_cast<std::size_t>(std::max<std::int64_t>(0, revoked->integer));
  return sizes;
}

}  // namespace stargate::server
