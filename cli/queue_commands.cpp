// Overviews: list, queue, health, and the completion helper.
#include <chrono>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "shared/clock.hpp"
#include "shared/json.hpp"
#include "shared/process_state.hpp"
#include "shared/text.hpp"

namespace stargate::cli {
namespace {

// "42s", "17m", "5h", "3d": how long ago an RFC 3339 time was.
std::string age(const nlohmann::json& timestamp) {
  if (!timestamp.is_string()) return "";
  auto then = parse_timestamp(timestamp.get<std::string>());
  if (!then) return "";
  const auto seconds = std::max<long long>(
      0, std::chrono::duration_cast<std::chrono::seconds>(now_utc() - *then).count());
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

}  // namespace

int list(Context& ctx, const ListOptions& options) {
  std::string query = "?limit=" + std::to_string(options.limit);
  if (!options.state.empty()) {
    if (!parse_local_state(options.state)) {
      ctx.out.error(
          "--state must be one of queued, accepted, processing, completed, failed, "
          "rejected, cancelled");
      return kExitUsage;
    }
    query += "&state=" + options.state;
  }
  if (!options.type.empty()) {
    if (options.type.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") !=
        std::string::npos) {
      ctx.out.error("--type: '" + escape_text(options.type, 64) + "' is not a process type");
      return kExitUsage;
    }
    query += "&processType=" + options.type;
  }
  auto reply = ctx.client.call("GET", "/v1/processes" + query);
  if (!reply) return unreachable(ctx, reply.error());
  if (reply->status != 200) return report(ctx, *reply);
  const auto& processes = reply->body.value("processes", nlohmann::json::array());
  if (ctx.out.json()) {
    ctx.out.document(processes);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : processes) {
    const int progress = r.value("progress", 0);
    rows.push_back({plain_text(r["clientProcessId"]), plain_text(r["processType"]),
                    plain_text(r["state"]), age(r["createdAt"]),
                    progress > 0 ? std::to_string(progress) + "%" : "",
                    plain_text(r["processId"])});
  }
  if (rows.empty()) {
    ctx.out.note("no processes" + std::string(options.state.empty() ? "" : " " + options.state));
    return kExitOk;
  }
  ctx.out.table({"ID", "TYPE", "STATE", "AGE", "PROGRESS", "PROCESS"}, rows, 2);
  return kExitOk;
}

int queue(Context& ctx, bool flush) {
  if (flush) {
    auto reply = ctx.client.call("POST", "/v1/queue/flush", nlohmann::json::object());
    if (!reply) return unreachable(ctx, reply.error());
    if (reply->status != 202) return report(ctx, *reply);
    if (ctx.out.json()) {
      ctx.out.document(reply->body);
    } else {
      ctx.out.note("sending the queue now");
    }
    return kExitOk;
  }
  auto reply = ctx.client.call("GET", "/v1/queue");
  if (!reply) return unreachable(ctx, reply.error());
  if (reply->status != 200) return report(ctx, *reply);
  const auto& queued = reply->body.value("queued", nlohmann::json::array());
  if (ctx.out.json()) {
    ctx.out.document(queued);
    return kExitOk;
  }
  if (queued.empty()) {
    ctx.out.note("the queue is empty");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : queued) {
    rows.push_back({plain_text(r["clientProcessId"]), plain_text(r["processType"]),
                    age(r["createdAt"]), std::to_string(r.value("attempts", 0)),
                    plain_text(r["lastError"])});
  }
  ctx.out.table({"ID", "TYPE", "AGE", "ATTEMPTS", "LAST ERROR"}, rows);
  ctx.out.note(std::to_string(queued.size()) + " waiting to be sent");
  return kExitOk;
}

int health(Context& ctx) {
  auto reply = ctx.client.call("GET", "/v1/health");
  if (!reply) return unreachable(ctx, reply.error());
  if (reply->status != 200) return report(ctx, *reply);
  const auto& h = reply->body;
  const bool degraded = h.value("status", "") != "ok";
  if (ctx.out.json()) {
    ctx.out.document(h);
    return degraded ? kExitError : kExitOk;
  }
  const auto& gateway = h.value("gateway", nlohmann::json::object());
  const auto& queue = h.value("queue", nlohmann::json::object());
  std::string types;
  for (const auto& type : h.value("processTypes", nlohmann::json::array())) {
    types += (types.empty() ? "" : ", ") + plain_text(type);
  }
  std::string token = "none yet";
  if (h.contains("token") && h["token"].is_object()) {
    token = "valid for " + std::to_string(h["token"].value("validForSeconds", 0)) + "s";
  }
  const std::string polling = plain_text(gateway.value("polling", nlohmann::json()));
  ctx.out.line("stargated " + plain_text(h["version"]) + ": " + (degraded ? "DEGRADED" : "ok"));
  std::vector<std::pair<std::string, std::string>> rows = {
      {"gateway", plain_text(gateway["url"])},
      {"last success", plain_text(gateway["lastSuccess"])},
      {"failures in a row", std::to_string(gateway.value("consecutiveFailures", 0))},
      {"last error", plain_text(gateway["lastError"])},
      {"following", polling == "feed"       ? "through the gateway's change feed"
                    : polling == "schedule" ? "by polling each process"
                                            : polling},
      {"token", token},
      {"process types", types},
      {"queued", std::to_string(queue.value("queued", 0))},
      {"active", std::to_string(queue.value("activeProcesses", 0))},
      {"queue error", plain_text(queue.value("lastError", nlohmann::json()))},
  };
  std::erase_if(rows, [](const auto& row) { return row.second.empty(); });
  ctx.out.fields(rows);
  return degraded ? kExitError : kExitOk;
}

int complete(Context& ctx, const std::string& what) {
  if (what == "types") {
    auto reply = ctx.client.call("GET", "/v1/health", nullptr, 2);
    if (!reply || reply->status != 200) return kExitError;
    for (const auto& type : reply->body.value("processTypes", nlohmann::json::array())) {
      ctx.out.line(plain_text(type));
    }
    return kExitOk;
  }
  auto reply = ctx.client.call("GET", "/v1/processes?limit=200", nullptr, 2);
  if (!reply || reply->status != 200) return kExitError;
  for (const auto& r : reply->body.value("processes", nlohmann::json::array())) {
    ctx.out.line(plain_text(r["clientProcessId"]));
  }
  return kExitOk;
}

}  // namespace stargate::cli
