// The server's private files and its store.
#include "server/app/state_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace stargate::server {

Status write_private_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(path + ": " + std::strerror(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return fail(path + ": write failed");
  return {};
}

Expected<std::unique_ptr<SqliteStore>> open_store(const ServerConfig& config) {
  std::error_code ignored;
  std::filesystem::create_directories(config.state_dir, ignored);
  return SqliteStore::open(config.store_path);
}

}  // namespace stargate::server
