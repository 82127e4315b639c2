// Private files the server's commands create (a client secret, the bound port) that only
// the owner may read.
#pragma once

#include <string>

#include "shared/expected.hpp"

namespace stargate::server {

// Writes `text` to a new file of mode 0600, fsync'd; refuses to replace an existing file.
Status write_private_file(const std::string& path, const std::string& text);

}  // namespace stargate::server
