// The exception boundary between libtorch and the rest of romed.
//
// libtorch reports errors (shape mismatches, out of memory, bad dtypes) by
// throwing c10::Error / std::exception. Nothing above server/model may see an
// exception, so every public entry point of the model layer that runs torch
// code wraps it:
//
//   absl::StatusOr<torch::Tensor> Logits(...) {
//     return GuardTorch("forward pass", [&] { return model.Forward(...); });
//   }
//
// A thrown exception becomes absl::InternalError("<context>: <what>"), or
// ResourceExhaustedError when it reports an allocation failure.
#ifndef ROMED_SERVER_CORE_TORCH_GUARD_H_
#define ROMED_SERVER_CORE_TORCH_GUARD_H_

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace romed {

// Converts a caught exception message into a Status with `context` prepended.
inline absl::Status StatusFromException(std::string_view context,
                                        const std::exception& e) {
  // Debian's abseil has its own absl::string_view (not std::string_view), so
  // StrCat takes the context as a std::string.
  const std::string where(context);
  std::string what = e.what();
  // c10::Error appends a C++ backtrace after the first line; keep the message.
  if (auto pos = what.find("\nException raised from"); pos != std::string::npos) {
    what.resize(pos);
  }
  if (absl::StrContains(what, "alloc") || absl::StrContains(what, "out of memory")) {
    return absl::ResourceExhaustedError(absl::StrCat(where, ": ", what));
  }
  return absl::InternalError(absl::StrCat(where, ": ", what));
}

// Runs `fn` and converts any exception into a Status. `fn` may return void,
// absl::Status, absl::StatusOr<T> or a plain T (wrapped into StatusOr<T>).
template <typename Fn>
auto GuardTorch(std::string_view context, Fn&& fn) {
  using R = std::invoke_result_t<Fn>;
  if constexpr (std::is_void_v<R>) {
    try {
      fn();
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return StatusFromException(context, e);
    }
  } else if constexpr (std::is_same_v<R, absl::Status>) {
    try {
      return fn();
    } catch (const std::exception& e) {
      return StatusFromException(context, e);
    }
  } else {
    using Out = std::conditional_t<std::is_convertible_v<absl::Status, R>, R,
                                   absl::StatusOr<R>>;
    try {
      return Out(fn());
    } catch (const std::exception& e) {
      return Out(StatusFromException(context, e));
    }
  }
}

}  // namespace romed

#endif  // ROMED_SERVER_CORE_TORCH_GUARD_H_
