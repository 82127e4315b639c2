// JSON codecs of the gateway API bodies.
#include "shared/codec.hpp"

#include <algorithm>

#include "shared/ids.hpp"
#include "shared/text.hpp"

namespace stargate {
namespace {

using nlohmann::json;

// Field access that names the field in its errors.
class Fields {
 public:
  explicit Fields(const json& body) : body_(body) {}

  Expected<std::string> string(const char* name, bool required = true) const {
    const auto it = body_.find(name);
    if (it == body_.end() || it->is_null()) {
      if (required) return fail(std::string("Missing required field: ") + name);
      return std::string();
    }
    if (!it->is_string()) return fail(std::string("Field '") + name + "' must be a string");
    return it->get<std::string>();
  }

  Expected<std::optional<TimePoint>> time(const char* name, bool required = true) const {
    auto text = string(name, required);
    if (!text) return Unexpected{text.error()};
    if (text->empty()) {
      if (required) return fail(std::string("Field '") + name + "' is empty");
      return std::optional<TimePoint>{};
    }
    auto parsed = parse_timestamp(*text);
    if (!parsed) return fail(std::string("Field '") + name + "': " + parsed.error());
    return std::optional<TimePoint>{*parsed};
  }

 private:
  const json& body_;
};

void put_time(json& body, const char* name, const std::optional<TimePoint>& time) {
  if (time) body[name] = format_timestamp(*time);
}

}  // namespace

bool is_process_type_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxProcessTypeLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

Expected<SubmitRequest> parse_submit_request(const json& body) {
  if (!body.is_object()) return fail("Request body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (key != "clientProcessId" && key != "processType" && key != "data" &&
        key != "idempotencyKey") {
      return fail("Unknown field: " + escape_text(key, 64));
    }
  }
  const Fields fields(body);
  SubmitRequest request;
  auto client_id = fields.string("clientProcessId");
  if (!client_id) return Unexpected{client_id.error()};
  if (!is_safe_id(*client_id)) {
    return fail("Field 'clientProcessId' must be 1-128 characters of letters, digits and -_.:");
  }
  request.client_process_id = std::move(*client_id);
  auto type = fields.string("processType");
  if (!type) return Unexpected{type.error()};
  if (!is_process_type_name(*type)) {
    return fail("Field 'processType' must be 1-64 characters of a-z, 0-9, '_' and '-'");
  }
  request.process_type = std::move(*type);
  const auto data = body.find("data");
  if (data == body.end()) return fail("Missing required field: data");
  if (!data->is_object()) return fail("Field 'data' must be an object");
  request.data = *data;
  auto key = fields.string("idempotencyKey", false);
  if (!key) return Unexpected{key.error()};
  if (!key->empty() && !is_safe_id(*key)) {
    return fail("Field 'idempotencyKey' must be 1-128 characters of letters, digits and -_.:");
  }
  request.idempotency_key = std::move(*key);
  return request;
}

json to_json(const SubmitRequest& request) {
  json body = {
      {"clientProcessId", request.client_process_id},
      {"processType", request.process_type},
      {"data", request.data},
  };
  if (!request.idempotency_key.empty()) body["idempotencyKey"] = request.idempotency_key;
  return body;
}

std::string status_url(std::string_view process_id) {
  return "/api/stargate/processes/" + std::string(process_id);
}

json to_json(const Accepted& accepted) {
  json body = {
      {"processId", accepted.process_id},
      {"clientProcessId", accepted.client_process_id},
      {"processType", accepted.process_type},
      {"status", "accepted"},
      {"statusUrl", status_url(accepted.process_id)},
      {"createdAt", format_timestamp(accepted.created_at)},
  };
  put_time(body, "estimatedCompletionTime", accepted.estimated_completion);
  return body;
}

Expected<Accepted> parse_accepted(const json& body) {
  if (!body.is_object()) return fail("accepted body is not a JSON object");
  const Fields fields(body);
  Accepted accepted;
  auto id = fields.string("processId");
  if (!id) return Unexpected{id.error()};
  auto client_id = fields.string("clientProcessId");
  if (!client_id) return Unexpected{client_id.error()};
  auto type = fields.string("processType", false);
  if (!type) return Unexpected{type.error()};
  auto created = fields.time("createdAt");
  if (!created) return Unexpected{created.error()};
  auto estimate = fields.time("estimatedCompletionTime", false);
  if (!estimate) return Unexpected{estimate.error()};
  accepted.process_id = std::move(*id);
  accepted.client_process_id = std::move(*client_id);
  accepted.process_type = std::move(*type);
  accepted.created_at = **created;
  accepted.estimated_completion = *estimate;
  return accepted;
}

json to_json(const ProcessError& error) {
  return {{"code", error.code}, {"message", error.message}, {"details", error.details}};
}

Expected<ProcessError> parse_process_error(const json& body) {
  if (!body.is_object()) return fail("Field 'error' must be an object");
  const Fields fields(body);
  auto code = fields.string("code");
  if (!code) return Unexpected{code.error()};
  auto message = fields.string("message", false);
  if (!message) return Unexpected{message.error()};
  ProcessError error{std::move(*code), std::move(*message), json::object()};
  if (const auto details = body.find("details"); details != body.end() && !details->is_null()) {
    error.details = *details;
  }
  return error;
}

json to_json(const ProcessView& view) {
  json body = {
      {"processId", view.process_id},
      {"clientProcessId", view.client_process_id},
      {"processType", view.process_type},
      {"status", to_string(view.status)},
      {"progress", view.progress},
      {"result", view.result},
      {"createdAt", format_timestamp(view.created_at)},
      {"updatedAt", format_timestamp(view.updated_at)},
  };
  switch (view.status) {
    case ProcessStatus::kAccepted:
    case ProcessStatus::kProcessing:
      if (!view.current_step.empty()) body["currentStep"] = view.current_step;
      put_time(body, "estimatedCompletionTime", view.estimated_completion);
      break;
    case ProcessStatus::kCompleted:
      put_time(body, "completedAt", view.finished_at);
      break;
    case ProcessStatus::kFailed:
      if (view.error) body["error"] = to_json(*view.error);
      if (!view.current_step.empty()) body["currentStep"] = view.current_step;
      put_time(body, "failedAt", view.finished_at);
      body["retryable"] = view.retryable;
      break;
  }
  return body;
}

Expected<ProcessView> parse_process_view(const json& body) {
  if (!body.is_object()) return fail("status body is not a JSON object");
  const Fields fields(body);
  ProcessView view;
  auto id = fields.string("processId");
  if (!id) return Unexpected{id.error()};
  view.process_id = std::move(*id);
  auto client_id = fields.string("clientProcessId", false);
  if (!client_id) return Unexpected{client_id.error()};
  view.client_process_id = std::move(*client_id);
  auto type = fields.string("processType", false);
  if (!type) return Unexpected{type.error()};
  view.process_type = std::move(*type);
  auto status_text = fields.string("status");
  if (!status_text) return Unexpected{status_text.error()};
  const auto status = parse_process_status(*status_text);
  if (!status)
    return fail("Field 'status' has unknown value '" + escape_text(*status_text, 32) + "'");
  view.status = *status;
  if (const auto p = body.find("progress"); p != body.end() && !p->is_null()) {
    if (!p->is_number()) return fail("Field 'progress' must be a number");
    view.progress = static_cast<int>(std::clamp(p->get<double>(), 0.0, 100.0));
  }
  auto step = fields.string("currentStep", false);
  if (!step) return Unexpected{step.error()};
  view.current_step = std::move(*step);
  if (const auto r = body.find("result"); r != body.end()) view.result = *r;
  if (const auto e = body.find("error"); e != body.end() && !e->is_null()) {
    auto error = parse_process_error(*e);
    if (!error) return Unexpected{error.error()};
    view.error = std::move(*error);
  }
  if (const auto r = body.find("retryable"); r != body.end() && !r->is_null()) {
    if (!r->is_boolean()) return fail("Field 'retryable' must be a boolean");
    view.retryable = r->get<bool>();
  }
  auto created = fields.time("createdAt", false);
  if (!created) return Unexpected{created.error()};
  view.created_at = created->value_or(TimePoint{});
  auto updated = fields.time("updatedAt", false);
  if (!updated) return Unexpected{updated.error()};
  view.updated_at = updated->value_or(view.created_at);
  auto finished =
      fields.time(view.status == ProcessStatus::kFailed ? "failedAt" : "completedAt", false);
  if (!finished) return Unexpected{finished.error()};
  view.finished_at = *finished;
  auto estimate = fields.time("estimatedCompletionTime", false);
  if (!estimate) return Unexpected{estimate.error()};
  view.estimated_completion = *estimate;
  return view;
}

Expected<TokenAnswer> parse_token_answer(const json& body) {
  if (!body.is_object()) return fail("answer is not a JSON object");
  const auto token = body.find("access_token");
  if (token == body.end() || !token->is_string()) return fail("answer without access_token");
  const auto& text = token->get_ref<const std::string&>();
  if (text.empty() || text.size() > 16 * 1024 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7F; })) {
    return fail("access_token is empty, too long or not printable ASCII");
  }
  TokenAnswer answer;
  answer.access_token = text;
  if (const auto it = body.find("expires_in"); it != body.end() && it->is_number_integer()) {
    answer.expires_in = std::clamp<std::int64_t>(it->get<std::int64_t>(), 1, 86400 * 30);
  }
  if (const auto scope = body.find("scope"); scope != body.end() && scope->is_string()) {
    std::vector<std::string> types;
    std::string_view rest = scope->get_ref<const std::string&>();
    while (!rest.empty()) {
      const auto space = rest.find(' ');
      const auto entry = rest.substr(0, space);
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      if (entry.rfind("process:", 0) == 0 && is_process_type_name(entry.substr(8))) {
        types.emplace_back(entry.substr(8));
      }
    }
    answer.process_types = std::move(types);
  }
  return answer;
}

Expected<ChangesAnswer> parse_changes_answer(const json& body) {
  if (!body.is_object()) return fail("change-feed answer is not a JSON object");
  const auto changes = body.find("changes");
  const auto cursor = body.find("cursor");
  if (changes == body.end() || !changes->is_array()) {
    return fail("change-feed answer without a changes array");
  }
  if (cursor == body.end() || !cursor->is_string() ||
      cursor->get_ref<const std::string&>().empty() ||
      cursor->get_ref<const std::string&>().size() > 128) {
    return fail("change-feed answer without a cursor of 1-128 characters");
  }
  ChangesAnswer answer;
  answer.cursor = cursor->get<std::string>();
  for (const auto& entry : *changes) {
    if (auto view = parse_process_view(entry)) {
      answer.changes.push_back(std::move(*view));
    } else {
      ++answer.unreadable;
    }
  }
  const auto more = body.find("more");
  answer.more = more != body.end() && more->is_boolean() && more->get<bool>();
  const auto after = body.find("retryAfter");
  if (after != body.end() && after->is_number_unsigned()) {
    answer.retry_after_seconds =
        static_cast<std::int64_t>(std::min<std::uint64_t>(after->get<std::uint64_t>(), 3600));
  }
  return answer;
}

}  // namespace stargate
