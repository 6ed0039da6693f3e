#include "server/engine/concurrency_limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace romed {

ConcurrencyLimiter::ConcurrencyLimiter(int64_t limit, std::string flag)
    : limit_(limit), flag_(std::move(flag)) {}

absl::StatusOr<ConcurrencyLimiter::Slot> ConcurrencyLimiter::TryAcquire() {
  int64_t current = in_use_.load();
  while (current < limit_) {
    if (in_use_.compare_exchange_weak(current, current + 1)) return Slot(this);
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("too many concurrent requests: ", current, " running, the limit is ",
                   limit_, " (", flag_, "); retry later"));
}

}  // namespace romed
