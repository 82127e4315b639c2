// Fuzz target: the token endpoint's client credentials, from an HTTP Basic header and from
// a form body (the first line of the input is the header's value, the rest the form).
#include <cstdint>
#include <string>

#include <httplib.h>

#include "server/processes/requests.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace stargate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  const std::string header = input.substr(0, newline);
  const std::string form = newline == std::string::npos ? "" : input.substr(newline + 1);
  if (auto credentials = server::basic_credentials(header)) {
    fuzz::check(header.rfind("Basic ", 0) == 0, "credentials from a header that is not Basic");
  }
  if (auto credentials = server::basic_credentials("Basic " + header)) {
    (void)credentials->first.size();
  }
  httplib::Params params;
  httplib::detail::parse_query_text(form, params);
  (void)percent_decode(form);
  return 0;
}
