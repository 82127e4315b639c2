#include "server/store/redis/redis_url.hpp"

namespace stargate::server::redis {

Expected<Endpoint> parse_redis_url(const std::string& url) {
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) return fail("expected redis://host[:port][/db]");
  std::string rest = url.substr(scheme.size());
  if (rest.find('@') != std::string::npos) {
    return fail("a password does not belong in the URL: use [redis] password_file");
  }
  Endpoint endpoint;
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest.resize(slash);
    if (!db.empty()) {
      if (db.size() > 2 || db.find_first_not_of("0123456789") != std::string::npos) {
        return fail("the database is a number from 0 to 99");
      }
      endpoint.database = std::stoi(db);
    }
  }
  std::string host = rest;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos) return fail("unclosed [ in the host");
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return fail("expected :port after ]");
    rest = rest.empty() ? "" : rest.substr(1);
    if (!rest.empty()) {
      if (rest.size() > 5 || rest.find_first_not_of("0123456789") != std::string::npos) {
        return fail("the port is a number from 1 to 65535");
      }
      endpoint.port = std::stoi(rest);
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    const std::string port = rest.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos) {
      return fail("the port is a number from 1 to 65535");
    }
    endpoint.port = std::stoi(port);
  }
  if (endpoint.port < 1 || endpoint.port > 65535)
    return fail("the port is a number from 1 to 65535");
  if (host.empty() || host.size() > 253) return fail("expected a host name or address");
  endpoint.host = host;
  return endpoint;
}

Status check_key_prefix(const std::string& prefix) {
  if (prefix.empty() || prefix.size() > 64 ||
      prefix.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789_.:-") != std::string::npos) {
    return fail("expected 1 to 64 letters, digits, '_', '.', ':' or '-'");
  }
  return {};
}

}  // namespace stargate::server::redis
