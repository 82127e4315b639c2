// `stargate-server serve` and the admin commands, as library code that main() calls.
#pragma once

#include <string>
#include <vector>

namespace stargate::server {

struct ServeOptions {
  std::string config_path;
  std::string listen;     // overrides server.listen when not empty
  std::string port_file;  // when set, the bound port is written here once listening
};

// Runs the gateway and the engine until SIGTERM or SIGINT. Returns the exit code.
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
// Revokes a client: its tokens stop working at once and it gets no new ones.
int client_revoke(const std::string& config_path, const std::string& client_id);

}  // namespace stargate::server
