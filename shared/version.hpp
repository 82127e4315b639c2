// The version every program prints with --version and reports in health answers.
#pragma once

#include <string_view>

namespace stargate {

std::string_view version();

}  // namespace stargate
