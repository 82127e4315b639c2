// A cache shared by the gateways of the records of completed processes (a completed
// process never changes again, so any copy is right for ever; entries only expire to bound
// memory). Losing it costs reads of the record, nothing else.
#pragma once

#include <optional>
#include <string>

#include "shared/duration.hpp"
#include "shared/expected.hpp"

namespace stargate::server {

class AnswerCache {
 public:
  virtual ~AnswerCache() = default;
  virtual Expected<std::optional<std::string>> get(const std::string& process_id) = 0;
  virtual Status put(const std::string& process_id, const std::string& document, Duration ttl) = 0;
};

}  // namespace stargate::server
