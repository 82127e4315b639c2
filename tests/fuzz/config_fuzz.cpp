// Fuzz target: configuration files (TOML through toml11, then every key's checks) of both
// the daemon and the server. A bad file is an error listing problems, never a crash.
#include <cstdint>
#include <string>

#include "daemon/config.hpp"
#include "server/app/server_config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace stargate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto daemon = daemon::parse_daemon_config(text, "fuzz.toml")) {
    fuzz::check(daemon->socket.max_connections >= 4, "socket.max_connections below its minimum");
  } else {
    fuzz::check(!daemon.error().empty(), "a refused daemon configuration without a reason");
  }
  if (auto server = server::parse_server_config(text, "fuzz.toml")) {
    fuzz::check(!server->process_types.empty(), "a server without process types");
  } else {
    fuzz::check(!server.error().empty(), "a refused server configuration without a reason");
  }
  return 0;
}
