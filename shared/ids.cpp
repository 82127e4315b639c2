// Identifier generation and validation.
#include "shared/ids.hpp"

#include <uuid.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>

namespace stargate {

std::string new_uuid() {
  // A per-thread generator seeded from the kernel: ids must be unique, not secret, and
  // libuuid's uuid_generate_random() reseeds on every call, which shows at 30k requests/s.
  thread_local std::mt19937_64 random{[] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }()};
  uuid_t raw;
  const std::uint64_t high = random(), low = random();
  std::memcpy(raw, &high, 8);
  std::memcpy(raw + 8, &low, 8);
  raw[6] = static_cast<unsigned char>((raw[6] & 0x0f) | 0x40);  // version 4
  raw[8] = static_cast<unsigned char>((raw[8] & 0x3f) | 0x80);  // RFC 4122 variant
  char text[37];
  uuid_unparse_lower(raw, text);
  return text;
}

bool is_uuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (text[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

std::string format_process_id(TimePoint day, std::uint64_t sequence) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(day);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[48];
  std::snprintf(text, sizeof text, "PROC-%04d%02d%02d-%05llu", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, static_cast<unsigned long long>(sequence));
  return text;
}

bool is_process_id(std::string_view text) {
  // PROC- + 8 digits + - + 5 to 20 digits
  if (text.size() < 19 || text.size() > 34 || text.substr(0, 5) != "PROC-" || text[13] != '-') {
    return false;
  }
  for (std::size_t i = 5; i < text.size(); ++i) {
    if (i == 13) continue;
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

bool is_safe_id(std::string_view text) {
  if (text.empty() || text.size() > 128) return false;
  for (const char c : text) {
    const bool ok =
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace stargate
