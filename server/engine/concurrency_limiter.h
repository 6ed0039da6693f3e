// ConcurrencyLimiter: admission control for --max_concurrent_requests. A
// request holds a Slot while it runs; past the limit, TryAcquire fails at
// once with RESOURCE_EXHAUSTED naming the limit and its flag (clients retry
// with backoff; the server never builds an unbounded queue).
//
// Thread-safe.
#ifndef ROMED_SERVER_ENGINE_CONCURRENCY_LIMITER_H_
#define ROMED_SERVER_ENGINE_CONCURRENCY_LIMITER_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace romed {

class ConcurrencyLimiter {
 public:
  // `flag` names the limit in errors ("--max_concurrent_requests").
  ConcurrencyLimiter(int64_t limit, std::string flag);

  // Releases its slot when destroyed. Movable.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot() {
      if (owner_ != nullptr) owner_->in_use_.fetch_sub(1);
    }

   private:
    friend class ConcurrencyLimiter;
    explicit Slot(ConcurrencyLimiter* owner) : owner_(owner) {}
    ConcurrencyLimiter* owner_;
  };

  absl::StatusOr<Slot> TryAcquire();

  int64_t in_use() const { return in_use_.load(); }
  int64_t limit() const { return limit_; }

 private:
  const int64_t limit_;
  const std::string flag_;
  std::atomic<int64_t> in_use_{0};
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_CONCURRENCY_LIMITER_H_
