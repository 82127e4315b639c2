// The orders the end-to-end tests submit, as the CLI's --data takes them.
#pragma once

namespace stargate::test {

// One unit of SKU-001: what most tests send.
inline constexpr const char* kOrder =
    R"({"orderId":"ORD-1","items":[{"sku":"SKU-001","quantity":1}]})";
// The demo's order (scripts/demo): ten units.
inline constexpr const char* kDemoOrder =
    R"({"orderId":"ORD-12345","items":[{"sku":"SKU-001","quantity":10}]})";

}  // namespace stargate::test
