// Secrets read from files: a path from the configuration, or else a systemd credential
// ($CREDENTIALS_DIRECTORY/<name>, from LoadCredential=). A file that group or others may
// access is refused, so that a secret never sits where other users can read it.
#pragma once

#include <string>

#include "shared/expected.hpp"

namespace stargate {

// `what` names the secret in errors ("client secret"); `missing` is the whole error when
// neither a path nor the credential is there. Trailing newlines and spaces are dropped; an
// empty file is an error.
Expected<std::string> read_secret_file(const std::string& path, const std::string& credential,
                                       const std::string& what, const std::string& missing);

}  // namespace stargate
