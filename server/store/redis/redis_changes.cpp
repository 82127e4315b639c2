#include "server/store/redis/redis_changes.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <string_view>

namespace stargate::server {
namespace {

constexpr std::size_t kWakeKept = 1000;

// KEYS: stream, epochs, wake stream, trimmed; ARGV: tenant, retention in seconds, entries
// the wake stream keeps, then the process ids (one entry each, one wakeup for all).
// Entries older than the retention go, and the newest of them is noted in `trimmed` (Redis
// notes only XDEL's in max-deleted-entry-id).
constexpr const char* kRecord = R"lua(
local now = redis.call('TIME')
redis.call('HSETNX', KEYS[2], ARGV[1], now[1] .. string.format('%06d', now[2]))
local oldest = (tonumber(now[1]) - tonumber(ARGV[2])) .. '000'
local first = redis.call('XRANGE', KEYS[1], '-', '(' .. oldest, 'COUNT', 1)
if #first > 0 then
  local gone = redis.call('XREVRANGE', KEYS[1], '(' .. oldest, '-', 'COUNT', 1)
  redis.call('HSET', KEYS[4], ARGV[1], gone[1][1])
  redis.call('XTRIM', KEYS[1], 'MINID', oldest)
end
for i = 4, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'p', ARGV[i])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 't', ARGV[1])
return 1
)lua";

// KEYS: epochs; ARGV: tenant. A new epoch: every cursor given out before is refused.
constexpr const char* kRenew = R"lua(
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], now[1] .. string.format('%06d', now[2]))
return 1
)lua";

// A stream's newest id ("0-0" when there is none).
constexpr const char* kStreamIds = R"lua(
local function newest(key)
  if redis.call('EXISTS', key) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
)lua";

// KEYS: stream, epochs; ARGV: tenant. {epoch, newest id}.
const std::string kHead = std::string(kStreamIds) + R"lua(
local now = redis.call('TIME')
redis.call('HSETNX', KEYS[2], ARGV[1], now[1] .. string.format('%06d', now[2]))
return {redis.call('HGET', KEYS[2], ARGV[1]), newest(KEYS[1])}
)lua";

// KEYS: stream, epochs, trimmed; ARGV: tenant, epoch, ms, seq, count. {0}: the cursor is
// refused; {1, entries}: the entries after it.
const std::string kAfter = std::string(kStreamIds) + R"lua(
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return {0} end
local function split(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function before(a_ms, a_seq, b_ms, b_seq)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end
local ms, seq = tonumber(ARGV[3]), tonumber(ARGV[4])
local last_ms, last_seq = split(newest(KEYS[1]))
local deleted_ms, deleted_seq = split(redis.call('HGET', KEYS[3], ARGV[1]) or '0-0')
if before(last_ms, last_seq, ms, seq) or before(ms, seq, deleted_ms, deleted_seq) then
  return {0}
end
if last_ms == 0 and last_seq == 0 then return {1, {}} end
return {1, redis.call('XRANGE', KEYS[1], '(' .. ARGV[3] .. '-' .. ARGV[4], '+', 'COUNT', ARGV[5])}
)lua";

// A number as this index writes it: digits, no leading zero, short enough for Lua to
// compare exactly.
std::optional<std::uint64_t> canonical_number(std::string_view text) {
  if (text.empty() || text.size() > 15 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

struct Cursor {
  std::string epoch;
  std::string ms;
  std::string seq;
};

// "EPOCH-MS-SEQ", each part canonical; nullopt for anything else.
std::optional<Cursor> parse_cursor(std::string_view text) {
  const auto first = text.find('-');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = text.find('-', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  Cursor cursor{std::string(text.substr(0, first)),
                std::string(text.substr(first + 1, second - first - 1)),
                std::string(text.substr(second + 1))};
  if (cursor.epoch.size() > 20 || !canonical_number(cursor.epoch.substr(0, 15)) ||
      !std::all_of(cursor.epoch.begin(), cursor.epoch.end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      !canonical_number(cursor.ms) || !canonical_number(cursor.seq)) {
    return std::nullopt;
  }
  return cursor;
}

// The field `name` of a stream entry [id, [field, value, ...]].
std::string entry_field(const redis::Reply& entry, const std::string& name) {
  if (entry.elements.size() != 2) return "";
  const auto& fields = entry.elements[1].elements;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].text == name) return fields[i + 1].text;
  }
  return "";
}

}  // namespace

std::string RedisChanges::stream_of(const std::string& tenant) const {
  return redis_->key("changes:" + tenant);
}

RedisChanges::RedisChanges(std::shared_ptr<redis::Client> redis, Duration retention)
    : redis_(std::move(redis)),
      epochs_(redis_->key("changes-epochs")),
      trimmed_(redis_->key("changes-trimmed")),
      wake_(redis_->key("changed")),
      retention_seconds_(std::to_string(std::max<std::int64_t>(
          1, std::chrono::duration_cast<std::chrono::seconds>(retention).count()))) {}

RedisChanges::~RedisChanges() {
  stop_listening();
}

Status RedisChanges::record(const std::string& tenant,
                            const std::vector<std::string>& process_ids) {
  if (process_ids.empty()) return {};
  repair();
  std::vector<std::string> args = {tenant, retention_seconds_, std::to_string(kWakeKept)};
  args.insert(args.end(), process_ids.begin(), process_ids.end());
  auto recorded = redis_->eval(kRecord, {stream_of(tenant), epochs_, wake_, trimmed_}, args);
  if (!recorded) {
    std::lock_guard lock(lost_mutex_);
    lost_.insert(tenant);
    return Unexpected{recorded.error()};
  }
  return {};
}

void RedisChanges::repair() {
  std::set<std::string> lost;
  {
    std::lock_guard lock(lost_mutex_);
    if (lost_.empty()) return;
    lost.swap(lost_);
  }
  for (auto it = lost.begin(); it != lost.end();) {
    if (!redis_->eval(kRenew, {epochs_}, {*it})) break;
    spdlog::info(
        "change feed: tenant {} has a new epoch (a change was not recorded); its readers "
        "resynchronise",
        *it);
    it = lost.erase(it);
  }
  if (!lost.empty()) {
    std::lock_guard lock(lost_mutex_);
    lost_.merge(lost);
  }
}

Expected<std::string> RedisChanges::head(const std::string& tenant) {
  repair();
  auto reply = redis_->eval(kHead, {stream_of(tenant), epochs_}, {tenant});
  if (!reply) return Unexpected{reply.error()};
  if (reply->elements.size() != 2) return fail("redis: unexpected answer to the feed's head");
  return reply->elements[0].text + "-" + reply->elements[1].text;
}

Expected<ChangeIndex::Read> RedisChanges::after(const std::string& tenant,
                                                const std::string& cursor, std::size_t count) {
  repair();
  Read read;
  const auto parsed = parse_cursor(cursor);
  if (!parsed) {
    read.cursor_known = false;
    return read;
  }
  auto reply =
      redis_->eval(kAfter, {stream_of(tenant), epochs_, trimmed_},
                   {tenant, parsed->epoch, parsed->ms, parsed->seq, std::to_string(count)});
  if (!reply) return Unexpected{reply.error()};
  if (reply->elements.empty()) return fail("redis: unexpected answer to a feed read");
  if (reply->elements[0].integer != 1) {
    read.cursor_known = false;
    return read;
  }
  if (reply->elements.size() < 2) return read;
  for (const auto& entry : reply->elements[1].elements) {
    if (entry.elements.empty()) continue;
    const auto process_id = entry_field(entry, "p");
    if (process_id.empty()) continue;
    read.entries.push_back({parsed->epoch + "-" + entry.elements[0].text, process_id});
  }
  return read;
}

void RedisChanges::listen(std::function<void(const std::string& tenant)> listener) {
  stop_listening();
  if (!listener) return;
  {
    std::lock_guard lock(listen_mutex_);
    stop_ = false;
  }
  listener_ = std::thread([this, listener = std::move(listener)] { follow(listener); });
}

void RedisChanges::stop_listening() {
  if (!listener_.joinable()) return;
  {
    std::lock_guard lock(listen_mutex_);
    stop_ = true;
  }
  stop_changed_.notify_all();
  listener_.join();
}

bool RedisChanges::rest(std::chrono::milliseconds pause) {
  std::unique_lock lock(listen_mutex_);
  return !stop_changed_.wait_for(lock, pause, [&] { return stop_; });
}

// Follows the wake stream from its newest entry. Each read blocks at most half a second
// (under the client's timeout), so that a stop is heard soon. After Redis was unreachable,
// the entries added meanwhile are unknown: every reader is told to look again.
void RedisChanges::follow(const std::function<void(const std::string&)>& listener) {
  std::string last;
  bool interrupted = false;
  while (rest(std::chrono::milliseconds(0))) {
    if (last.empty()) {
      auto newest = redis_->command({"XREVRANGE", wake_, "+", "-", "COUNT", "1"});
      if (!newest) {
        interrupted = true;
        rest(std::chrono::seconds(1));
        continue;
      }
      last = newest->elements.empty() || newest->elements[0].elements.empty()
                 ? "0-0"
                 : newest->elements[0].elements[0].text;
      if (interrupted) listener("");
      interrupted = false;
    }
    auto read = redis_->command({"XREAD", "COUNT", "500", "BLOCK", "500", "STREAMS", wake_, last});
    if (!read) {
      spdlog::warn("change feed: cannot follow changes in Redis ({}); long polls wait to their end",
                   read.error());
      last.clear();
      interrupted = true;
      rest(std::chrono::seconds(1));
      continue;
    }
    std::set<std::string> tenants;
    for (const auto& stream : read->elements) {
      if (stream.elements.size() != 2) continue;
      for (const auto& entry : stream.elements[1].elements) {
        if (entry.elements.empty()) continue;
        last = entry.elements[0].text;
        tenants.insert(entry_field(entry, "t"));
      }
    }
    for (const auto& tenant : tenants) {
      if (!tenant.empty()) listener(tenant);
    }
  }
}

}  // namespace stargate::server
