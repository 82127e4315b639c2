#include "shared/secrets.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace stargate {

Expected<std::string> read_secret_file(const std::string& configured, const std::string& credential,
                                       const std::string& what, const std::string& missing) {
  std::string path = configured;
  if (path.empty()) {
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (dir == nullptr || *dir == '\0') return fail(missing);
    path = std::string(dir) + "/" + credential;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(what + " " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return fail(what + " " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(what + " " + path + " has mode " + mode +
                ": it must not be accessible by group or others; run: chmod 600 " + path);
  }
  std::string secret(4096, '\0');
  const ssize_t n = ::read(fd, secret.data(), secret.size());
  ::close(fd);
  if (n < 0) return fail(what + " " + path + ": " + std::strerror(errno));
  secret.resize(static_cast<std::size_t>(n));
  while (!secret.empty() &&
         (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' ')) {
    secret.pop_back();
  }
  if (secret.empty()) return fail(what + " " + path + " is empty");
  return secret;
}

}  // namespace stargate
