// Commands on one process: submit, status, wait, result, retry, cancel.
#include "cli/commands.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/exit_codes.hpp"
#include "shared/ids.hpp"
#include "shared/json.hpp"
#include "shared/process_state.hpp"
#include "shared/text.hpp"

namespace stargate::cli {
namespace {

constexpr std::size_t kMaxData = 1 << 20;

}  // namespace

int report(Context& ctx, const Reply& reply, const std::string& id) {
  std::string message = "stargated answered HTTP " + std::to_string(reply.status);
  if (reply.body.is_object() && reply.body.contains("message") &&
      reply.body["message"].is_string()) {
    message = reply.body["message"].get<std::string>();
  }
  if (reply.status == 404 && !id.empty()) {
    ctx.out.error("no such process: " + id + " (see 'stargate list')");
    return kExitNoSuchProcess;
  }
  ctx.out.error(message);
  // A request the daemon found malformed is a usage error; a conflict (not retryable, no
  // longer cancellable) or a failure on its side is an error.
  return reply.status == 400 || reply.status == 413 || reply.status == 415 ? kExitUsage
                                                                           : kExitError;
}

bool valid_id(Context& ctx, const std::string& id) {
  if (is_safe_id(id)) return true;
  ctx.out.error("'" + escape_text(id, 64) + "' is not a process id (letters, digits and -_.:)");
  return false;
}

int unreachable(Context& ctx, const ConnectError& error) {
  ctx.out.error(error.message);
  return kExitUnreachable;
}

namespace {

bool failed_state(const std::string& state) {
  return state == "failed" || state == "rejected" || state == "cancelled";
}

// Prints the final record of a waited-for process and says how it ended.
int finish(Context& ctx, const nlohmann::json& record) {
  if (ctx.out.json()) {
    ctx.out.document(record);
  } else {
    ctx.out.record(record);
  }
  return failed_state(record.value("state", "")) ? kExitProcessFailed : kExitOk;
}

struct Waited {
  int code = kExitOk;
  nlohmann::json record;
};

// Follows one process until it ends or the deadline passes.
Waited wait_one(Context& ctx, const std::string& id,
                std::optional<std::chrono::steady_clock::time_point> deadline) {
  ctx.out.clear_progress_on_interrupt();
  const int chunk = ctx.out.progress_enabled() ? 1 : 60;  // seconds per long-poll
  for (;;) {
    int seconds = chunk;
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        seconds = 0;
      else
        seconds = static_cast<int>(std::min<long long>(chunk, (left.count() + 999) / 1000));
    }
    auto reply =
        ctx.client.call("GET", "/v1/processes/" + id + "/wait?timeout=" + std::to_string(seconds),
                        nullptr, seconds + 30);
    if (!reply) return {unreachable(ctx, reply.error()), {}};
    if (reply->status != 200 || !reply->body.is_object()) return {report(ctx, *reply, id), {}};
    const auto& record = reply->body;
    const auto state = parse_local_state(record.value("state", ""));
    if (state && is_terminal(*state)) {
      ctx.out.end_progress();
      return {failed_state(record.value("state", "")) ? kExitProcessFailed : kExitOk, record};
    }
    ctx.out.progress(record);
    if (deadline && std::chrono::steady_clock::now() >= *deadline) {
      ctx.out.end_progress();
      return {kExitTimeout, record};
    }
  }
}

// Reads at most `limit` + 1 bytes: enough for the parser to refuse what is too large,
// without reading /dev/zero or a runaway pipe until memory runs out.
std::string read_at_most(std::istream& in, std::size_t limit) {
  std::string text;
  char chunk[65536];
  while (text.size() <= limit && in.read(chunk, sizeof chunk).gcount() > 0) {
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
  }
  if (text.size() > limit + 1) text.resize(limit + 1);
  return text;
}

Expected<std::string> read_source(const std::string& file, std::size_t limit) {
  if (file == "-") return read_at_most(std::cin, limit);
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return fail("--data-file " + file + ": is a directory, not a file");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail("--data-file " + file + ": cannot open: " + std::strerror(errno));
  return read_at_most(in, limit);
}

}  // namespace

Expected<nlohmann::json> read_data(const SubmitOptions& options) {
  std::string source = "--data";
  std::string text = options.data;
  if (!options.data_file.empty()) {
    source = options.data_file == "-" ? "standard input" : options.data_file;
    auto read = read_source(options.data_file, kMaxData);
    if (!read) return Unexpected{read.error()};
    if (read->size() > kMaxData) {
      return fail(source + ": larger than the limit of " + std::to_string(kMaxData) + " bytes");
    }
    text = std::move(*read);
  } else if (options.data.empty()) {
    return nlohmann::json::object();
  }
  auto parsed = parse_json(text, {kMaxData, 64});
  if (!parsed) return fail(source + ": " + parsed.error().message);
  if (!parsed->is_object()) return fail(source + ": the data must be a JSON object");
  return std::move(*parsed);
}

int submit(Context& ctx, const SubmitOptions& options) {
  auto data = read_data(options);
  if (!data) {
    ctx.out.error(data.error());
    return kExitUsage;
  }
  nlohmann::json body = {{"processType", options.type}, {"data", *data}};
  if (!options.id.empty()) body["clientProcessId"] = options.id;
  auto reply = ctx.client.call("POST", "/v1/processes", body);
  if (!reply) return unreachable(ctx, reply.error());
  if (reply->status != 202 && reply->status != 200) return report(ctx, *reply);
  const auto& record = reply->body;
  const std::string id = record.value("clientProcessId", "");
  if (reply->status == 200) {
    ctx.out.note("already known: " + id + " (nothing new was queued)");
  }
  if (!options.wait) {
    if (ctx.out.json()) {
      ctx.out.document(record);
    } else {
      ctx.out.line(id);
    }
    return kExitOk;
  }
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (options.timeout) deadline = std::chrono::steady_clock::now() + *options.timeout;
  auto waited = wait_one(ctx, id, deadline);
  if (waited.record.is_null()) return waited.code;
  finish(ctx, waited.record);
  if (waited.code == kExitTimeout) ctx.out.error("timed out waiting for " + id);
  return waited.code;
}

int status(Context& ctx, const std::string& id) {
  if (!valid_id(ctx, id)) return kExitUsage;
  auto reply = ctx.client.call("GET", "/v1/processes/" + id);
  if (!reply) return unreachable(ctx, reply.error());
  if (reply->status != 200) return report(ctx, *reply, id);
  if (ctx.out.json()) {
    ctx.out.document(reply->body);
  } else {
    ctx.out.record(reply->body);
  }
  return kExitOk;
}

int result(Context& ctx, const std::string& id) {
  if (!valid_id(ctx, id)) return kExitUsage;
  auto reply = ctx.client.call("GET", "/v1/processes/" + id);
  if (!reply) return unreachable(ctx, reply.error());
  if (reply->status != 200) return report(ctx, *reply, id);
  const auto& record = reply->body;
  const std::string state = record.value("state", "");
  if (state == "completed") {
    ctx.out.document(record.value("result", nlohmann::json()));
    return kExitOk;
  }
  if (failed_state(state)) {
    std::string why = state;
    if (record.contains("error") && record["error"].is_object()) {
      why += ": " + record["error"].value("code", std::string()) + ": " +
             record["error"].value("message", std::string());
    }
    ctx.out.error(id + " has no result: " + why);
    return kExitProcessFailed;
  }
  ctx.out.error(id + " has no result yet (" + state + "); try 'stargate wait " + id + "'");
  return kExitError;
}

int retry(Context& ctx, const std::string& id) {
  if (!valid_id(ctx, id)) return kExitUsage;
  auto reply =
      ctx.client.call("POST", "/v1/processes/" + id + "/retry", nlohmann::json::object(), 60);
  if (!reply) return unreachable(ctx, reply.error());
  if (reply->status != 202) return report(ctx, *reply, id);
  if (ctx.out.json()) {
    ctx.out.document(reply->body);
  } else {
    ctx.out.note("retrying " + id + ": the gateway starts a new attempt; 'stargate wait " + id +
                 "' follows it");
  }
  return kExitOk;
}

int cancel(Context& ctx, const std::string& id) {
  if (!valid_id(ctx, id)) return kExitUsage;
  auto reply = ctx.client.call("POST", "/v1/processes/" + id + "/cancel", nlohmann::json::object());
  if (!reply) return unreachable(ctx, reply.error());
  if (reply->status != 200) return report(ctx, *reply, id);
  if (ctx.out.json()) {
    ctx.out.document(reply->body);
  } else {
    ctx.out.note("cancelled " + id + ": it will not be sent");
  }
  return kExitOk;
}

int wait(Context& ctx, const std::vector<std::string>& ids, std::optional<Duration> timeout) {
  for (const auto& id : ids) {
    if (!valid_id(ctx, id)) return kExitUsage;
  }
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (timeout) deadline = std::chrono::steady_clock::now() + *timeout;
  int worst = kExitOk;
  nlohmann::json records = nlohmann::json::array();
  for (const auto& id : ids) {
    auto waited = wait_one(ctx, id, deadline);
    if (waited.record.is_null()) return waited.code;  // an error already reported
    records.push_back(waited.record);
    if (!ctx.out.json()) {
      if (records.size() > 1) ctx.out.line("");
      finish(ctx, waited.record);
    }
    if (waited.code == kExitTimeout) ctx.out.error("timed out waiting for " + id);
    // Timeout outranks a failure: the script learns that something is still running.
    if (waited.code == kExitTimeout || (worst == kExitOk && waited.code != kExitOk)) {
      worst = waited.code;
    }
  }
  if (ctx.out.json()) ctx.out.document(ids.size() == 1 ? records[0] : records);
  return worst;
}

}  // namespace stargate::cli
