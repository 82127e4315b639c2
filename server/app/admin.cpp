// The administrator's commands of stargate-server: clients (add, list, revoke), the audit
// trail (verify, export) and the order handler's stock. Each opens the store the configuration
// names, does one thing and returns an exit code.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "server/app/backends.hpp"
#include "server/app/serve.hpp"
#include "server/app/state_files.hpp"
#include "server/common/digest.hpp"
#include "server/gateway/auth.hpp"
#include "server/store/audit_chain.hpp"
#include "shared/codec.hpp"
#include "shared/json.hpp"

namespace stargate::server {
namespace {

int complain(const std::string& message) {
  std::fprintf(stderr, "stargate-server: %s\n", message.c_str());
  return kExitError;
}

// The whole audit trail is read in one query sorted by chain, which a MongoDB-compatible
// server may take minutes to start answering on a large trail (FerretDB sorts it in memory
// first): audit verify and export wait up to this long for a reply instead of the few
// seconds a gateway does, unless the connection string sets socketTimeoutMS itself.
constexpr int kAuditReplyTimeoutMs = 30 * 60 * 1000;

// The store of the configuration at `path` (defaults without one); prints why not. The
// configuration goes to `loaded` when given. `whole_audit`: for a command that reads the
// whole audit trail (see kAuditReplyTimeoutMs).
std::unique_ptr<Store> admin_store(const std::string& path, ServerConfig* loaded = nullptr,
                                   bool whole_audit = false) {
  auto config = load_server_config(path);
  if (!config) {
    complain("configuration: " + config.error());
    return nullptr;
  }
  if (loaded != nullptr) *loaded = *config;
  if (whole_audit && config->store_backend == "redis+mongo") {
    config->mongo_uri = mongo_uri_with_reply_timeout(config->mongo_uri, kAuditReplyTimeoutMs);
  }
  auto backend = open_backend(*config);
  if (!backend) {
    complain(backend.error());
    return nullptr;
  }
  return std::move(backend->store);
}

void audit_admin(Store& store, nlohmann::json fields) {
  if (auto appended = store.append_audit({{now_utc(), "admin", std::move(fields)}}); !appended) {
    std::fprintf(stderr, "stargate-server: warning: not audited: %s\n", appended.error().c_str());
  }
}

// The longest grace a rotation may give the secret it replaces.
constexpr auto kMaxGrace = std::chrono::hours(24 * 30);

// What names a secret in the audit trail without revealing anything of it: the start of the
// SHA-256 of its (salted) Argon2id hash.
std::string secret_id(const std::string& secret_hash) {
  return sha256_hex(secret_hash).substr(0, 16);
}

// Prints a new secret as client add and client rotate do: to the terminal, or (`secret_file`
// given) only the client id there.
void print_secret(const std::string& client_id, const std::string& secret,
                  const std::string& secret_file) {
  if (secret_file.empty()) {
    std::printf("client_id:     %s\nclient_secret: %s\n", client_id.c_str(), secret.c_str());
    std::fprintf(stderr, "The secret is shown once; store it now (it is kept only hashed).\n");
  } else {
    std::printf("%s\n", client_id.c_str());
  }
}

}  // namespace

int client_add(const ClientAddOptions& options) {
  if (options.tenant.empty() || !is_process_type_name(options.tenant)) {
    std::fprintf(stderr,
                 "stargate-server: --tenant must be 1-64 characters of a-z, 0-9, '_' and '-'\n");
    return 2;
  }
  for (const auto& type : options.process_types) {
    if (!is_process_type_name(type)) {
      std::fprintf(stderr, "stargate-server: invalid process type '%s'\n", type.c_str());
      return 2;
    }
  }
  auto store = admin_store(options.config_path);
  if (!store) return kExitError;
  ClientRecord client;
  client.client_id = new_client_id();
  client.tenant = options.tenant;
  client.process_types = options.process_types;
  client.created_at = now_utc();
  const std::string secret = new_client_secret();
  auto hash = hash_secret(secret);
  if (!hash) {
    return complain(hash.error());
  }
  client.secret_hash = *hash;
  if (!options.secret_file.empty()) {
    if (auto written = write_private_file(options.secret_file, secret + "\n"); !written) {
      std::fprintf(stderr, "stargate-server: --secret-file: %s\n", written.error().c_str());
      return kExitError;
    }
  }
  if (auto added = store->add_client(client); !added) {
    std::fprintf(stderr, "stargate-server: %s\n", added.error().c_str());
    if (!options.secret_file.empty()) ::unlink(options.secret_file.c_str());
    return kExitError;
  }
  audit_admin(*store, {{"action", "client add"},
                       {"clientId", client.client_id},
                       {"tenant", client.tenant},
                       {"processTypes", client.process_types},
                       {"secretId", secret_id(*hash)}});
  if (options.json) {
    nlohmann::json out = {{"clientId", client.client_id},
                          {"tenant", client.tenant},
                          {"processTypes", client.process_types}};
    if (options.secret_file.empty()) out["clientSecret"] = secret;
    std::printf("%s\n", dump_json(out).c_str());
  } else {
    print_secret(client.client_id, secret, options.secret_file);
  }
  return kExitOk;
}

int client_rotate(const ClientRotateOptions& options) {
  auto grace = parse_duration(options.grace);
  if (!grace || *grace > kMaxGrace) {
    std::fprintf(stderr,
                 "stargate-server: --grace must be a duration such as 24h or 0s, at most 720h\n");
    return 2;
  }
  auto store = admin_store(options.config_path);
  if (!store) return kExitError;
  auto client = store->find_client(options.client_id);
  if (!client) return complain(client.error());
  if (!*client || (*client)->revoked) {
    return complain("no such client, or revoked: " + options.client_id);
  }
  const std::string secret = new_client_secret();
  auto hash = hash_secret(secret);
  if (!hash) return complain(hash.error());
  if (!options.secret_file.empty()) {
    if (auto written = write_private_file(options.secret_file, secret + "\n"); !written) {
      std::fprintf(stderr, "stargate-server: --secret-file: %s\n", written.error().c_str());
      return kExitError;
    }
  }
  const auto now = now_utc();
  std::optional<TimePoint> until;
  if (grace->count() > 0) until = now + *grace;
  if (auto rotated = store->rotate_client_secret(options.client_id, *hash, until); !rotated) {
    if (!options.secret_file.empty()) ::unlink(options.secret_file.c_str());
    return complain(rotated.error());
  }
  const nlohmann::json until_text = until ? nlohmann::json(format_timestamp(*until)) : nullptr;
  audit_admin(*store, {{"action", "client rotate"},
                       {"clientId", options.client_id},
                       {"secretId", secret_id(*hash)},
                       {"previousSecretId", secret_id((*client)->secret_hash)},
                       {"previousSecretUntil", until_text}});
  if (options.json) {
    nlohmann::json out = {{"clientId", options.client_id}, {"previousSecretUntil", until_text}};
    if (options.secret_file.empty()) out["clientSecret"] = secret;
    std::printf("%s\n", dump_json(out).c_str());
    return kExitOk;
  }
  print_secret(options.client_id, secret, options.secret_file);
  if (until) {
    std::fprintf(stderr, "The previous secret stays accepted until %s.\n",
                 format_timestamp(*until).c_str());
  } else {
    std::fprintf(stderr, "The previous secret is no longer accepted.\n");
  }
  return kExitOk;
}

int client_revoke(const std::string& config_path, const std::string& client_id) {
  auto store = admin_store(config_path);
  if (!store) return kExitError;
  if (auto revoked = store->revoke_client(client_id, now_utc()); !revoked) {
    return complain(revoked.error());
  }
  audit_admin(*store, {{"action", "client revoke"}, {"clientId", client_id}});
  std::fprintf(stderr, "revoked %s: its tokens stop working at once\n", client_id.c_str());
  return kExitOk;
}

int audit_verify(const std::string& config_path) {
  auto store = admin_store(config_path, nullptr, true);
  if (!store) return kExitError;
  auto check = verify_audit(*store);
  if (!check) {
    return complain(check.error());
  }
  if (!check->intact) {
    const std::string of_chain = check->bad_chain.empty() ? "" : " of chain " + check->bad_chain;
    std::printf("audit trail BROKEN at record %lld%s: %s\n", static_cast<long long>(check->bad_seq),
                of_chain.c_str(), check->problem.c_str());
    return kExitError;
  }
  if (check->chains > 1) {
    std::printf("audit trail intact: %lld records in %lld chains\n",
                static_cast<long long>(check->records), static_cast<long long>(check->chains));
  } else {
    std::printf("audit trail intact: %lld records, head %s\n",
                static_cast<long long>(check->records), check->head_hash.c_str());
  }
  return kExitOk;
}

int audit_export(const std::string& config_path, const std::string& since_text) {
  TimePoint since{};
  if (auto ago = parse_duration(since_text)) {
    since = now_utc() - *ago;
  } else if (auto time = parse_timestamp(since_text)) {
    since = *time;
  } else {
    std::fprintf(stderr,
                 "stargate-server: --since: expected a time (2026-01-14T12:00:00Z) or a "
                 "duration ago (24h), got '%s'\n",
                 since_text.substr(0, 64).c_str());
    return 2;
  }
  auto store = admin_store(config_path, nullptr, true);
  if (!store) return kExitError;
  auto exported = store->scan_audit(since, [](const AuditRecord& record) {
    auto line = nlohmann::json::parse(record.record, nullptr, false);
    if (line.is_discarded()) line = {{"unreadable", record.record}};
    line["prevHash"] = record.prev_hash;
    line["hash"] = record.hash;
    std::printf("%s\n",
                line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  });
  if (!exported) {
    return complain(exported.error());
  }
  return kExitOk;
}

int client_list(const std::string& config_path, bool json) {
  auto store = admin_store(config_path);
  if (!store) return kExitError;
  auto clients = store->list_clients();
  if (!clients) {
    return complain(clients.error());
  }
  nlohmann::json out = nlohmann::json::array();
  const auto now = now_utc();
  for (const auto& client : *clients) {
    // When a rotation's grace still runs: until when the previous secret is accepted.
    std::string rotating;
    if (!client.revoked && client.previous_secret_valid(now)) {
      rotating = format_timestamp(*client.previous_secret_until);
    }
    if (json) {
      out.push_back({{"clientId", client.client_id},
                     {"tenant", client.tenant},
                     {"processTypes", client.process_types},
                     {"createdAt", format_timestamp(client.created_at)},
                     {"revoked", client.revoked},
                     {"previousSecretUntil",
                      rotating.empty() ? nlohmann::json() : nlohmann::json(rotating)}});
    } else {
      std::string types;
      for (const auto& t : client.process_types)
        types += (types.empty() ? "" : ",") + t;
      std::printf("%-22s %-16s %-24s %s%s%s\n", client.client_id.c_str(), client.tenant.c_str(),
                  types.c_str(), format_timestamp(client.created_at).c_str(),
                  client.revoked ? " revoked" : "",
                  rotating.empty() ? "" : (" previous secret until " + rotating).c_str());
    }
  }
  if (json) std::printf("%s\n", dump_json(out).c_str());
  return kExitOk;
}

int stock_list(const std::string& config_path, bool json) {
  ServerConfig config;
  auto store = admin_store(config_path, &config);
  if (!store) return kExitError;
  auto reserved = store->reserved_stock({}, "");
  if (!reserved) return complain(reserved.error());
  // Every SKU the configuration lists, and every SKU orders hold units of.
  std::map<std::string, std::int64_t> skus = config.order.stock;
  for (const auto& [sku, units] : *reserved)
    skus.emplace(sku, config.order.stock_of(sku));
  nlohmann::json out = nlohmann::json::array();
  if (!json) std::printf("%-24s %12s %12s %12s\n", "SKU", "STOCK", "RESERVED", "AVAILABLE");
  for (const auto& [sku, stock] : skus) {
    const auto held = reserved->find(sku);
    const std::int64_t taken = held == reserved->end() ? 0 : held->second;
    const std::int64_t available = units_left(stock, taken);
    if (json) {
      out.push_back(
          {{"sku", sku}, {"stock", stock}, {"reserved", taken}, {"available", available}});
    } else {
      std::printf("%-24s %12lld %12lld %12lld\n", sku.c_str(), static_cast<long long>(stock),
                  static_cast<long long>(taken), static_cast<long long>(available));
    }
  }
  if (json) {
    std::printf("%s\n",
                dump_json({{"defaultStock", config.order.default_stock}, {"skus", out}}).c_str());
  } else {
    std::printf("(SKUs not listed: %lld units each)\n",
                static_cast<long long>(config.order.default_stock));
  }
  return kExitOk;
}

}  // namespace stargate::server
