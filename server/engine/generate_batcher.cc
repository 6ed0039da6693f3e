#include "server/engine/generate_batcher.h"

#include <algorithm>
#include <vector>

namespace romed {

GenerateBatcher::GenerateBatcher(const Generator* generator, int64_t max_batch_size,
                                 absl::Duration window)
    : generator_(generator), max_batch_size_(std::max<int64_t>(1, max_batch_size)),
      window_(window) {
  worker_ = std::thread([this] { WorkerLoop(); });
}

GenerateBatcher::~GenerateBatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  queue_changed_.notify_all();
  worker_.join();
}

absl::StatusOr<GenerateResult> GenerateBatcher::Generate(const GenerateRequest& request,
                                                         const TokenCallback& on_token) {
  Pending pending{&request, &on_token, absl::UnknownError("not run"), false};
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  queue_.push_back(&pending);
  queue_changed_.notify_all();
  batch_done_.wait(lock, [&] { return pending.done; });
  return std::move(pending.result);
}

std::deque<GenerateBatcher::Pending*> GenerateBatcher::TakeBatch(
    std::unique_lock<std::mutex>& lock) {
  queue_changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
  if (queue_.empty()) return {};
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(window_);
  queue_changed_.wait_until(lock, deadline, [&] {
    return stopping_ || static_cast<int64_t>(queue_.size()) >= max_batch_size_;
  });
  std::deque<Pending*> batch;
  while (!queue_.empty() && static_cast<int64_t>(batch.size()) < max_batch_size_) {
    batch.push_back(queue_.front());
    queue_.pop_front();
  }
  return batch;
}

void GenerateBatcher::RunBatch(const std::deque<Pending*>& batch) {
  std::vector<GenerateRequest> requests;
  std::vector<TokenCallback> callbacks;
  for (Pending* p : batch) {
    requests.push_back(*p->request);
    callbacks.push_back(*p->on_token ? *p->on_token : TokenCallback([](const GeneratedToken&) {
      return true;
    }));
  }
  absl::StatusOr<std::vector<GenerateResult>> results =
      generator_->GenerateBatch(requests, callbacks);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (results.ok()) {
      batch[i]->result = std::move((*results)[i]);
    } else {
      batch[i]->result = results.status();
    }
    batch[i]->done = true;
  }
  ++batches_run_;
  largest_batch_ = std::max<int64_t>(largest_batch_, batch.size());
}

void GenerateBatcher::WorkerLoop() {
  while (true) {
    std::deque<Pending*> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      batch = TakeBatch(lock);
    }
    if (batch.empty()) return;  // stopping and nothing queued
    RunBatch(batch);
    batch_done_.notify_all();
  }
}

int64_t GenerateBatcher::batches_run() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_run_;
}

int64_t GenerateBatcher::largest_batch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return largest_batch_;
}

}  // namespace romed
