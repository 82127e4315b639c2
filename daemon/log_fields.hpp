// The log fields of what the daemon does for one request: its client process id (which is
// also the correlation id the daemon sends with it) and, once the gateway gave one, the
// process id, so that `journalctl -u stargated CLIENT_PROCESS_ID=...` tells its story.
#pragma once

#include <string>

#include "shared/logging.hpp"

namespace stargate {

inline LogFields request_log_fields(const std::string& client_process_id,
                                    const std::string& process_id = "") {
  return {client_process_id, "", client_process_id, process_id};
}

}  // namespace stargate
