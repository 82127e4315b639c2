// Decoding socket requests.
#include "daemon/local_requests.hpp"

#include <algorithm>
#include <cctype>

#include "shared/codec.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"
#include "shared/text.hpp"

namespace stargate::daemon {
namespace {

Unexpected<ApiError> invalid(std::string message) {
  return Unexpected{ApiError{ErrorCode::kInvalidRequest, std::move(message), std::nullopt}};
}

}  // namespace

bool is_local_host_header(std::string_view host) {
  const auto is = [&](std::string_view name) {
    return host.size() == name.size() &&
           std::equal(host.begin(), host.end(), name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) == b;
           });
  };
  return is("localhost") || is("stargated");
}

std::optional<std::map<std::string, std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq));
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!key || !value) return std::nullopt;
    out[*key] = *value;
  }
  return out;
}

Expected<NewRequest, ApiError> decode_local_submit(std::string_view content_type,
                                                   std::string_view body) {
  if (content_type.rfind("application/json", 0) != 0) {
    return Unexpected{ApiError{ErrorCode::kUnsupportedMediaType,
                               "Content-Type must be application/json", std::nullopt}};
  }
  auto parsed = parse_json(body, {kMaxLocalBody, 64});
  if (!parsed) {
    const bool too_large = parsed.error().kind == JsonError::Kind::kTooLarge;
    return Unexpected{ApiError{too_large ? ErrorCode::kPayloadTooLarge : ErrorCode::kInvalidRequest,
                               "Malformed JSON: " + parsed.error().message, std::nullopt}};
  }
  if (!parsed->is_object()) return invalid("Request body must be a JSON object");
  NewRequest item;
  for (const auto& [key, value] : parsed->items()) {
    if (key == "processType") {
      if (!value.is_string() || !is_process_type_name(value.get_ref<const std::string&>())) {
        return invalid("Field 'processType' must be 1-64 characters of a-z, 0-9, '_' and '-'");
      }
      item.process_type = value.get<std::string>();
    } else if (key == "data") {
      if (!value.is_object()) return invalid("Field 'data' must be an object");
      item.data = value;
    } else if (key == "clientProcessId") {
      if (!value.is_string() || !is_safe_id(value.get_ref<const std::string&>())) {
        return invalid(
            "Field 'clientProcessId' must be 1-128 characters of letters, digits and -_.:");
      }
      item.client_process_id = value.get<std::string>();
    } else {
      return invalid("Unknown field: " + escape_text(key, 64));
    }
  }
  if (item.process_type.empty()) return invalid("Missing required field: processType");
  return item;
}

}  // namespace stargate::daemon
