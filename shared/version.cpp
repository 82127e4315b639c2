// The project version, passed in by CMake from project(VERSION ...).
#include "shared/version.hpp"

namespace stargate {

std::string_view version() {
  return STARGATE_VERSION;
}

}  // namespace stargate
