#include "server/store/mongo/bson_encode.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

namespace stargate::server::mongo {
namespace {

using nlohmann::json;

bool valid_utf8(const std::string& text) {
  return bson_utf8_validate(text.data(), text.size(), true);
}

// The keys that make an object a typed value in extended JSON (libbson's parser reads
// {"$numberLong": "5"} as an int64, not as a document).
bool extended_json_key(std::string_view key) {
  static constexpr std::array<std::string_view, 20> kTyped = {
      "$oid",           "$date",      "$numberLong", "$numberInt", "$numberDouble",
      "$numberDecimal", "$binary",    "$uuid",       "$regex",     "$regularExpression",
      "$options",       "$timestamp", "$minKey",     "$maxKey",    "$undefined",
      "$code",          "$scope",     "$symbol",     "$dbPointer", "$ref"};
  if (key.empty() || key[0] != '$') return false;
  for (const auto typed : kTyped) {
    if (key == typed) return true;
  }
  return false;
}

bool append_value(bson_t* out, const std::string& key, const json& value);

bool append_object(bson_t* out, const json& object) {
  for (const auto& [key, value] : object.items()) {
    if (extended_json_key(key) || key.find('\0') != std::string::npos || !valid_utf8(key)) {
      return false;
    }
    if (!append_value(out, key, value)) return false;
  }
  return true;
}

bool append_value(bson_t* out, const std::string& key, const json& value) {
  const char* name = key.c_str();
  const int length = static_cast<int>(key.size());
  switch (value.type()) {
    case json::value_t::null:
      return bson_append_null(out, name, length);
    case json::value_t::boolean:
      return bson_append_bool(out, name, length, value.get<bool>());
    case json::value_t::number_integer: {
      const auto number = value.get<std::int64_t>();
      if (number >= std::numeric_limits<std::int32_t>::min() &&
          number <= std::numeric_limits<std::int32_t>::max()) {
        return bson_append_int32(out, name, length, static_cast<std::int32_t>(number));
      }
      return bson_append_int64(out, name, length, number);
    }
    case json::value_t::number_unsigned: {
      const auto number = value.get<std::uint64_t>();
      if (number <= static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
        return bson_append_int32(out, name, length, static_cast<std::int32_t>(number));
      }
      if (number <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return bson_append_int64(out, name, length, static_cast<std::int64_t>(number));
      }
      return false;
    }
    case json::value_t::number_float: {
      const auto number = value.get<double>();
      if (!std::isfinite(number)) return false;
      return bson_append_double(out, name, length, number);
    }
    case json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      if (!valid_utf8(text)) return false;
      return bson_append_utf8(out, name, length, text.data(), static_cast<int>(text.size()));
    }
    case json::value_t::object: {
      bson_t child;
      if (!bson_append_document_begin(out, name, length, &child)) return false;
      const bool written = append_object(&child, value);
      return bson_append_document_end(out, &child) && written;
    }
    case json::value_t::array: {
      bson_t child;
      if (!bson_append_array_begin(out, name, length, &child)) return false;
      bool written = true;
      std::uint32_t index = 0;
      for (const auto& element : value) {
        char digits[16];
        const char* item = nullptr;
        bson_uint32_to_string(index++, &item, digits, sizeof digits);
        if (!append_value(&child, item, element)) {
          written = false;
          break;
        }
      }
      return bson_append_array_end(out, &child) && written;
    }
    default:  // binary, discarded
      return false;
  }
}

}  // namespace

bool append_members(bson_t* out, const nlohmann::json& object) {
  return object.is_object() && append_object(out, object);
}

}  // namespace stargate::server::mongo
