// Shared by the fuzz targets: properties every target checks on what it gets back.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "shared/text.hpp"

namespace stargate::fuzz {

// Stops the run with a report: libFuzzer saves the input that got here.
[[noreturn]] inline void broken(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "property broken: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

inline void check(bool holds, const char* what, std::string_view detail = {}) {
  if (!holds) broken(what, detail);
}

// An error message for a client: valid UTF-8 with no control characters, so that it can
// go into a JSON body and a log line as it is.
inline void check_message(std::string_view message) {
  check(is_valid_utf8(message), "message is not valid UTF-8", message);
  for (const char c : message) {
    const auto byte = static_cast<unsigned char>(c);
    check(byte >= 0x20 && byte != 0x7F, "control character in a message", message);
  }
}

}  // namespace stargate::fuzz
