// Default paths.
#include "shared/paths.hpp"

#include <unistd.h>

#include <cstdlib>

namespace stargate {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// systemd passes colon-separated lists when a unit names several directories; use the first.
std::string first_dir(const std::string& list) {
  return list.substr(0, list.find(':'));
}

}  // namespace

std::string default_socket_path() {
  if (auto path = env("STARGATE_SOCKET"); !path.empty()) return path;
  if (auto dir = env("RUNTIME_DIRECTORY"); !dir.empty()) {
    return first_dir(dir) + "/stargated.sock";
  }
  // The system daemon's socket, for root and for members of its group alike.
  const std::string system_socket = "/run/stargate/stargated.sock";
  if (geteuid() == 0 || ::access(system_socket.c_str(), F_OK) == 0) return system_socket;
  if (auto dir = env("XDG_RUNTIME_DIR"); !dir.empty()) return dir + "/stargate/stargated.sock";
  return "/tmp/stargate-" + std::to_string(geteuid()) + "/stargated.sock";
}

std::string default_queue_path() {
  if (auto dir = env("STATE_DIRECTORY"); !dir.empty()) return first_dir(dir) + "/queue.db";
  if (geteuid() == 0) return "/var/lib/stargate/queue.db";
  if (auto dir = env("XDG_STATE_HOME"); !dir.empty()) return dir + "/stargate/queue.db";
  return env("HOME") + "/.local/state/stargate/queue.db";
}

std::string default_daemon_config_path() {
  return "/etc/stargate/stargated.toml";
}

}  // namespace stargate
