// Process resources the programs size themselves by.
#pragma once

#include <cstdint>

namespace stargate {

// Raises the soft limit on open descriptors to the hard one (systemd's advice for programs
// that need many: the soft default of 1024 exists for select(), which StarGate does not
// use). Returns the soft limit now in force.
std::uint64_t raise_open_file_limit();

}  // namespace stargate
