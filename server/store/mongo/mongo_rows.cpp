#include "server/store/mongo/mongo_rows.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string_view>

namespace stargate::server::mongo::rows {
namespace {

std::string text(const nlohmann::json& doc, const char* key) {
  const auto found = doc.find(key);
  return found != doc.end() && found->is_string() ? found->get<std::string>() : std::string();
}

std::int64_t integer(const nlohmann::json& doc, const char* key) {
  const auto found = doc.find(key);
  return found != doc.end() && found->is_number_integer() ? found->get<std::int64_t>() : 0;
}

std::optional<std::int64_t> optional_integer(const nlohmann::json& doc, const char* key) {
  const auto found = doc.find(key);
  if (found == doc.end() || !found->is_number_integer()) return std::nullopt;
  return found->get<std::int64_t>();
}

bool flag(const nlohmann::json& doc, const char* key) {
  const auto found = doc.find(key);
  return found != doc.end() && found->is_boolean() && found->get<bool>();
}

// JSON kept as text: read exactly as it was written.
nlohmann::json stored_json(const nlohmann::json& doc, const char* key) {
  const auto found = doc.find(key);
  if (found == doc.end() || !found->is_string()) return nullptr;
  auto parsed = nlohmann::json::parse(found->get<std::string>(), nullptr, false);
  return parsed.is_discarded() ? nlohmann::json() : parsed;
}

}  // namespace

ProcessRecord read_process(const nlohmann::json& doc) {
  ProcessRecord record;
  auto& view = record.view;
  view.process_id = text(doc, "_id");
  record.tenant = text(doc, "tenant");
  record.client_id = text(doc, "clientId");
  view.client_process_id = text(doc, "clientProcessId");
  view.process_type = text(doc, "processType");
  record.data = stored_json(doc, "data");
  if (record.data.is_null()) record.data = nlohmann::json::object();
  view.status = parse_process_status(text(doc, "status")).value_or(ProcessStatus::kFailed);
  view.progress = static_cast<int>(integer(doc, "progress"));
  view.current_step = text(doc, "currentStep");
  view.result = stored_json(doc, "result");
  if (auto error = stored_json(doc, "error"); !error.is_null()) {
    if (auto parsed = parse_process_error(error)) view.error = std::move(*parsed);
  }
  view.retryable = flag(doc, "retryable");
  record.attempt = static_cast<int>(integer(doc, "attempt"));
  view.created_at = from_unix_ms(integer(doc, "createdAt"));
  view.updated_at = from_unix_ms(integer(doc, "updatedAt"));
  if (auto finished = optional_integer(doc, "finishedAt"))
    view.finished_at = from_unix_ms(*finished);
  if (auto estimate = optional_integer(doc, "estimatedCompletion")) {
    view.estimated_completion = from_unix_ms(*estimate);
  }
  record.correlation_id = text(doc, "correlationId");
  return record;
}

ClientRecord read_client(const nlohmann::json& doc) {
  ClientRecord client;
  client.client_id = text(doc, "_id");
  client.tenant = text(doc, "tenant");
  client.secret_hash = text(doc, "secretHash");
  if (const auto types = doc.find("processTypes"); types != doc.end() && types->is_array()) {
    for (const auto& type : *types) {
      if (type.is_string()) client.process_types.push_back(type.get<std::string>());
    }
  }
  client.created_at = from_unix_ms(integer(doc, "createdAt"));
  client.revoked = flag(doc, "revoked");
  client.previous_secret_hash = text(doc, "previousSecretHash");
  if (auto until = optional_integer(doc, "previousSecretUntil")) {
    client.previous_secret_until = from_unix_ms(*until);
  }
  return client;
}

std::string audit_id(const std::string& chain, std::int64_t block) {
  char text[24];
  std::snprintf(text, sizeof text, "%020lld", static_cast<long long>(block));
  return chain + "/" + text;
}

// Each record is one line of the block's `records` text: seq, time, prevHash, hash and
// the record, separated by tabs. A record's text is JSON as chain_audit_record writes it,
// with every control character escaped, so it holds neither a tab nor a newline.
nlohmann::json audit_block(const std::string& chain, std::int64_t block,
                           const std::vector<AuditRecord>& records) {
  std::string lines;
  for (const AuditRecord& record : records) {
    if (!lines.empty()) lines += '\n';
    lines += std::to_string(record.seq);
    lines += '\t';
    lines += std::to_string(to_unix_ms(record.time));
    lines += '\t';
    lines += record.prev_hash;
    lines += '\t';
    lines += record.hash;
    lines += '\t';
    lines += record.record;
  }
  // The earliest and the latest of the records' times, not the first's and the last's:
  // records go in the order they came, which is not always the order of their times (a
  // request's record has the time it arrived, and requests end in any order).
  const auto [earliest, latest] = std::minmax_element(
      records.begin(), records.end(),
      [](const AuditRecord& a, const AuditRecord& b) { return a.time < b.time; });
  return {{"_id", audit_id(chain, block)},
          {"chain", chain},
          {"block", block},
          {"firstSeq", records.empty() ? 0 : records.front().seq},
          {"lastSeq", records.empty() ? 0 : records.back().seq},
          {"time", records.empty() ? 0 : to_unix_ms(earliest->time)},
          {"until", records.empty() ? 0 : to_unix_ms(latest->time)},
          {"records", std::move(lines)}};
}

namespace {

std::optional<std::int64_t> whole_number(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

// One line of a block; nothing when it is not five fields with whole numbers first.
std::optional<AuditRecord> read_audit_line(const std::string& chain, std::string_view line) {
  std::string_view fields[4];
  for (auto& field : fields) {
    const auto tab = line.find('\t');
    if (tab == std::string_view::npos) return std::nullopt;
    field = line.substr(0, tab);
    line.remove_prefix(tab + 1);
  }
  const auto seq = whole_number(fields[0]);
  const auto time = whole_number(fields[1]);
  if (!seq || !time) return std::nullopt;
  return AuditRecord{chain,
                     *seq,
                     from_unix_ms(*time),
                     std::string(line),
                     std::string(fields[2]),
                     std::string(fields[3])};
}

}  // namespace

std::vector<AuditRecord> read_audit_block(const nlohmann::json& doc) {
  const std::string chain = text(doc, "chain");
  std::vector<AuditRecord> out;
  const auto records = doc.find("records");
  if (records == doc.end() || !records->is_string()) return out;
  std::string_view lines = records->get_ref<const std::string&>();
  while (!lines.empty()) {
    const auto end = std::min(lines.find('\n'), lines.size());
    if (auto record = read_audit_line(chain, lines.substr(0, end))) {
      out.push_back(std::move(*record));
    }
    lines.remove_prefix(std::min(end + 1, lines.size()));
  }
  return out;
}

}  // namespace stargate::server::mongo::rows
