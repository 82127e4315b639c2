// Expected<T, E>: a value or the reason there is none. Expected failures in StarGate are
// values of this type (C++23's std::expected is not in g++ 12's C++20 library).
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace stargate {

// Wraps an error so that Expected<T, E> can be built from it even when T and E are alike.
template <typename E>
struct Unexpected {
  E error;
};

template <typename E>
Unexpected(E) -> Unexpected<E>;

// Shorthand for the usual case: an error that is a message.
inline Unexpected<std::string> fail(std::string message) {
  return {std::move(message)};
}

template <typename T, typename E = std::string>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  template <typename G>
  requires std::is_constructible_v<E, G> Expected(Unexpected<G> error)
      : state_(std::in_place_index<1>, E(std::move(error.error))) {}

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  // Calling value() on an error (or error() on a value) is a programming error:
  // std::get throws std::bad_variant_access.
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const { return std::get<1>(state_); }
  E& error() { return std::get<1>(state_); }

  T value_or(T fallback) const { return has_value() ? value() : std::move(fallback); }

 private:
  std::variant<T, E> state_;
};

// Expected<void>: success, or an error.
template <typename E>
class [[nodiscard]] Expected<void, E> {
 public:
  Expected() = default;
  template <typename G>
  requires std::is_constructible_v<E, G> Expected(Unexpected<G> error)
      : error_(E(std::move(error.error))), failed_(true) {}

  bool has_value() const { return !failed_; }
  explicit operator bool() const { return has_value(); }
  const E& error() const { return error_; }

 private:
  E error_{};
  bool failed_ = false;
};

using Status = Expected<void>;

}  // namespace stargate
