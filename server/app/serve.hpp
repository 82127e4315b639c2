// `stargate-server serve` and the admin commands, as library code that main() calls.
#pragma once

#include <string>
#include <vector>

namespace stargate::server {

// The exit codes of serve and the admin commands (see EXIT STATUS in stargate-server(8)).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;

// What one stargate-server process runs: the gateway and the engine (serve), or, to scale
// out on redis+mongo, only the HTTP gateway or only engine workers.
enum class Role { kServe, kGateway, kWorker };

struct ServeOptions {
  Role role = Role::kServe;
  std::string config_path;
  std::string listen;            // overrides server.listen when not empty
  std::string port_file;         // when set, the bound port is written here once listening
  bool log_level_given = false;  // --log-level was given: it wins over [log] level
};

// Runs the role's parts until SIGTERM or SIGINT. Returns the exit code.
int serve(const ServeOptions& options);

struct ClientAddOptions {
  std::string config_path;
  std::string tenant;
  std::vector<std::string> process_types;
  std::string secret_file;  // when set, the secret goes here (mode 0600), not to stdout
  bool json = false;
};

int client_add(const ClientAddOptions& options);
int client_list(const std::string& config_path, bool json);
struct ClientRotateOptions {
  std::string config_path;
  std::string client_id;
  std::string grace = "24h";  // how long the secret it had stays accepted beside the new one
  std::string secret_file;    // as for client add
  bool json = false;
};

// Gives a client a new secret; the one it had stays accepted for the grace.
int client_rotate(const ClientRotateOptions& options);
// Revokes a client: its tokens stop working at once and it gets no new ones.
int client_revoke(const std::string& config_path, const std::string& client_id);

// Checks the audit trail's hash chain: 0 when intact, 1 when a record was edited or removed.
int audit_verify(const std::string& config_path);
// Prints the audit records at or after `since` (RFC 3339, or a duration such as 24h meaning
// that long ago) as JSON lines.
int audit_export(const std::string& config_path, const std::string& since);
// Prints the order handler's stock per SKU: configured, reserved by orders, available.
int stock_list(const std::string& config_path, bool json);

}  // namespace stargate::server
