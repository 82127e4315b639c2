// Decoding what a local client sends on the socket, apart from the transport and the
// queue: query strings and the body of a submit. Every byte here is a local user's, so
// each function refuses bad input with the answer to give, and never throws.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/queue.hpp"
#include "shared/errors.hpp"
#include "shared/expected.hpp"

namespace stargate::daemon {

// The largest body the socket reads: a 1 MiB data object and its envelope.
inline constexpr std::size_t kMaxLocalBody = (1 << 20) + 4096;

// Whether a request's Host header may reach the API: "localhost" or "stargated", in any case
// (the caller also insists on exactly one Host header).
// Browsers send the page's host, so a page cannot drive the daemon through a forwarded socket.
bool is_local_host_header(std::string_view host);

// Splits "a=1&b=x%20y" into decoded pairs; std::nullopt on malformed percent-encoding.
std::optional<std::map<std::string, std::string>> parse_query(std::string_view query);

// POST /v1/processes: Content-Type JSON and {processType, data?, clientProcessId?}.
Expected<NewRequest, ApiError> decode_local_submit(std::string_view content_type,
                                                   std::string_view body);

}  // namespace stargate::daemon
