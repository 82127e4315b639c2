// Fuzz target: documents read back from MongoDB, as a hostile or careless hand may have
// edited them there (any JSON, any types, nested anywhere). Reading one into a process or
// client record or an audit block never throws, a record's JSON fields (data, result, error)
// come out as JSON that serialises, a block's records are all of the block's chain, and
// the records read from a block, written into one again, read back the same.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "server/store/mongo/mongo_rows.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace stargate;
using namespace stargate::server;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return 0;
  const ProcessRecord process = mongo::rows::read_process(doc);
  (void)process.data.dump();
  (void)process.view.result.dump();
  const ClientRecord client = mongo::rows::read_client(doc);
  (void)client.client_id.size();
  const auto chain = doc.find("chain");
  const std::string block_chain =
      chain != doc.end() && chain->is_string() ? chain->get<std::string>() : std::string();
  const auto records = mongo::rows::read_audit_block(doc);
  for (const AuditRecord& record : records) {
    fuzz::check(record.chain == block_chain, "a block's records are of its chain");
    if (record.seq >= 0) {
      fuzz::check(
          mongo::rows::audit_id(record.chain, record.seq).size() == record.chain.size() + 21,
          "audit id width");
    }
  }
  // What was read, written as a block again, reads back the same.
  const auto again =
      mongo::rows::read_audit_block(mongo::rows::audit_block(block_chain, 1, records));
  fuzz::check(again.size() == records.size(), "a block's records read back in number");
  for (std::size_t k = 0; k < again.size() && k < records.size(); ++k) {
    fuzz::check(again[k].seq == records[k].seq && again[k].time == records[k].time &&
                    again[k].record == records[k].record &&
                    again[k].prev_hash == records[k].prev_hash && again[k].hash == records[k].hash,
                "a block's record reads back as written");
  }
  return 0;
}
