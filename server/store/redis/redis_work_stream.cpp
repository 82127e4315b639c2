#include "server/store/redis/redis_work_stream.hpp"

#include <algorithm>

namespace stargate::server {
namespace {

const std::string kGroup = "workers";

// KEYS[1] stream, KEYS[2] covered set; ARGV: process ids. An entry only for a process that
// no entry covers yet: pushes from a gateway and from the sweeper never make two.
constexpr const char* kPush = R"lua(
for i = 1, #ARGV do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[1], '*', 'p', ARGV[i])
  end
end
return 1
)lua";

// Process ids in one script: Redis runs a script alone, so a long one holds up the others.
constexpr std::size_t kPushBatch = 256;

constexpr const char* kPushAgain = R"lua(
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('XADD', KEYS[1], '*', 'p', ARGV[1])
)lua";

// KEYS[1] stream, KEYS[2] covered set; ARGV[1] group, ARGV[2] entry id, ARGV[3] process id.
constexpr const char* kDone = R"lua(
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[3])
return 1
)lua";

// An entry of a stream reply: [id, [field, value, ...]]; nullopt for one deleted meanwhile.
std::optional<QueueIndex::Entry> read_entry(const redis::Reply& entry) {
  if (entry.elements.size() != 2) return std::nullopt;
  const auto& fields = entry.elements[1].elements;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].text == "p") return QueueIndex::Entry{entry.elements[0].text, fields[i + 1].text};
  }
  return std::nullopt;
}

}  // namespace

RedisWorkStream::RedisWorkStream(std::shared_ptr<redis::Client> redis, std::string consumer,
                                 Duration lease)
    : redis_(redis),
      consumer_(std::move(consumer)),
      lease_(lease),
      stream_(redis_->key("queue")),
      covered_(redis_->key("queue:covered")),
      sweep_lock_(redis_->key("queue:sweep")) {}

Expected<redis::Reply> RedisWorkStream::with_group(const std::vector<std::string>& args) {
  auto reply = redis_->command(args);
  // NOGROUP, or "no such key" from XINFO: a new Redis, or one that lost its data. The
  // group reads the stream from its start.
  if (reply || (reply.error().find("NOGROUP") == std::string::npos &&
                reply.error().find("no such key") == std::string::npos)) {
    return reply;
  }
  auto made = redis_->command({"XGROUP", "CREATE", stream_, kGroup, "0", "MKSTREAM"});
  if (!made && made.error().find("BUSYGROUP") == std::string::npos) {
    return Unexpected{made.error()};
  }
  return redis_->command(args);
}

Status RedisWorkStream::push(const std::vector<std::string>& process_ids) {
  for (std::size_t start = 0; start < process_ids.size(); start += kPushBatch) {
    const auto first = process_ids.begin() + static_cast<std::ptrdiff_t>(start);
    const auto last = process_ids.begin() +
                      static_cast<std::ptrdiff_t>(std::min(process_ids.size(), start + kPushBatch));
    auto pushed = redis_->eval(kPush, {stream_, covered_}, std::vector<std::string>(first, last));
    if (!pushed) return Unexpected{pushed.error()};
  }
  return {};
}

Status RedisWorkStream::push_again(const std::string& process_id) {
  auto pushed = redis_->eval(kPushAgain, {stream_, covered_}, {process_id});
  if (!pushed) return Unexpected{pushed.error()};
  return {};
}

Expected<std::optional<QueueIndex::Entry>> RedisWorkStream::next(Duration wait) {
  // A dead worker's entry first: it waited longest.
  auto stale = with_group({"XAUTOCLAIM", stream_, kGroup, consumer_, std::to_string(lease_.count()),
                           "0-0", "COUNT", "1"});
  if (!stale) return Unexpected{stale.error()};
  if (stale->elements.size() >= 2) {
    for (const auto& entry : stale->elements[1].elements) {
      if (auto read = read_entry(entry)) return read;
    }
  }
  std::vector<std::string> args = {"XREADGROUP", "GROUP", kGroup, consumer_, "COUNT", "1"};
  if (wait > Duration::zero()) {
    args.insert(args.end(), {"BLOCK", std::to_string(wait.count())});
  }
  args.insert(args.end(), {"STREAMS", stream_, ">"});
  auto fresh = with_group(args);
  if (!fresh) return Unexpected{fresh.error()};
  // [[stream, [[id, [field, value]]]]], or nil when nothing came within the wait
  for (const auto& stream : fresh->elements) {
    if (stream.elements.size() != 2) continue;
    for (const auto& entry : stream.elements[1].elements) {
      if (auto read = read_entry(entry)) return read;
    }
  }
  return std::optional<Entry>{};
}

Status RedisWorkStream::touch(const Entry& entry) {
  auto claimed = redis_->command({"XCLAIM", stream_, kGroup, consumer_, "0", entry.id, "JUSTID"});
  if (!claimed) return Unexpected{claimed.error()};
  return {};
}

Status RedisWorkStream::done(const Entry& entry) {
  auto finished = redis_->eval(kDone, {stream_, covered_}, {kGroup, entry.id, entry.process_id});
  if (!finished) return Unexpected{finished.error()};
  return {};
}

Expected<std::vector<std::string>> RedisWorkStream::sweep_uncovered(
    const std::vector<std::string>& process_ids) {
  std::vector<std::string> pushed;
  constexpr std::size_t kBatch = 500;
  for (std::size_t start = 0; start < process_ids.size(); start += kBatch) {
    const auto end = std::min(process_ids.size(), start + kBatch);
    std::vector<std::string> args = {"SMISMEMBER", covered_};
    args.insert(args.end(), process_ids.begin() + static_cast<std::ptrdiff_t>(start),
                process_ids.begin() + static_cast<std::ptrdiff_t>(end));
    auto covered = redis_->command(args);
    if (!covered) return Unexpected{covered.error()};
    for (std::size_t i = start; i < end; ++i) {
      const std::size_t k = i - start;
      if (k < covered->elements.size() && covered->elements[k].integer == 1) continue;
      if (auto added = push({process_ids[i]}); !added) return Unexpected{added.error()};
      pushed.push_back(process_ids[i]);
    }
  }
  return pushed;
}

Expected<bool> RedisWorkStream::sweep_due(Duration every) {
  auto taken = redis_->command({"SET", sweep_lock_, consumer_, "NX", "PX",
                                std::to_string(std::max<long>(1, every.count()))});
  if (!taken) return Unexpected{taken.error()};
  return taken->type == redis::Reply::Type::kStatus;
}

// XINFO CONSUMERS: per consumer a flat list of name, pending, idle (and, since Redis 7.2,
// inactive) with their values.
Expected<std::size_t> RedisWorkStream::forget_idle_workers(Duration idle) {
  auto consumers = with_group({"XINFO", "CONSUMERS", stream_, kGroup});
  if (!consumers) return Unexpected{consumers.error()};
  std::size_t forgotten = 0;
  for (const auto& consumer : consumers->elements) {
    std::string name;
    std::int64_t pending = -1;
    std::int64_t idle_ms = -1;
    for (std::size_t i = 0; i + 1 < consumer.elements.size(); i += 2) {
      const auto& field = consumer.elements[i].text;
      const auto& value = consumer.elements[i + 1];
      if (field == "name") name = value.text;
      if (field == "pending") pending = value.integer;
      if (field == "idle") idle_ms = value.integer;
    }
    if (name.empty() || name == consumer_ || pending != 0 || idle_ms < idle.count()) continue;
    auto deleted = redis_->command({"XGROUP", "DELCONSUMER", stream_, kGroup, name});
    if (!deleted) return Unexpected{deleted.error()};
    if (deleted->integer == 0) ++forgotten;  // it held nothing (checked again by Redis)
  }
  return forgotten;
}

}  // namespace stargate::server
