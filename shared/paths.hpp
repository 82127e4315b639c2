// Default locations shared by the daemon and the CLI, following systemd's conventions for
// services and the XDG base directories for a non-root user.
#pragma once

#include <string>

namespace stargate {

// $STARGATE_SOCKET if set; else $RUNTIME_DIRECTORY/stargated.sock under systemd;
// /run/stargate/stargated.sock for root, or for anyone when it exists (the packaged daemon);
// $XDG_RUNTIME_DIR/stargate/stargated.sock otherwise (/tmp/stargate-UID/stargated.sock when
// XDG_RUNTIME_DIR is unset).
std::string default_socket_path();

// $STATE_DIRECTORY/queue.db under systemd; /var/lib/stargate/queue.db for root;
// $XDG_STATE_HOME/stargate/queue.db (~/.local/state) otherwise.
std::string default_queue_path();

// /etc/stargate/stargated.toml
std::string default_daemon_config_path();

}  // namespace stargate
