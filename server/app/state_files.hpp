// Files the server's commands create: the store in its state directory, and private files
// (a client secret, the bound port) that only the owner may read.
#pragma once

#include <memory>
#include <string>

#include "server/app/server_config.hpp"
#include "server/store/sqlite/sqlite_store.hpp"

namespace stargate::server {

// Writes `text` to a new file of mode 0600, fsync'd; refuses to replace an existing file.
Status write_private_file(const std::string& path, const std::string& text);

// Opens (creating the state directory and the file if needed) the configuration's store.
Expected<std::unique_ptr<SqliteStore>> open_store(const ServerConfig& config);

}  // namespace stargate::server
