// The intra-op pool really runs our at::parallel_for calls on several threads.
// at::parallel_for is an inline template: with Debian's OpenMP libtorch its
// parallel branch exists only in translation units compiled with -fopenmp
// (CMakeLists.txt links OpenMP::OpenMP_CXX through romed_torch). Built
// without it, every range below runs on the calling thread and this fails.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "server/model/gpt2_model.h"
#include "tests/testing/tiny_model.h"

#include <mutex>
#include <set>
#include <thread>

namespace romed {
namespace {

TEST(IntraOpParallelTest, ParallelForUsesEveryThread) {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  std::mutex mu;
  std::set<std::thread::id> threads;
  int64_t covered = 0;
  // Two chunks of grain 1: one per thread of a 2-thread team.
  at::parallel_for(0, 2, 1, [&](int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mu);
    threads.insert(std::this_thread::get_id());
    covered += end - begin;
  });
  at::set_num_threads(saved);
  EXPECT_EQ(covered, 2);
  EXPECT_EQ(threads.size(), 2u) << "at::parallel_for ran on one thread: is -fopenmp missing?";
}

// Decode-sized forwards run LayerNorm and attention matmuls on the calling
// thread (gpt2_model.cc's SerialOpsGuard sets this thread's OpenMP thread
// count to 1 for them); afterwards the thread count is back and
// at::parallel_for uses both threads again.
TEST(IntraOpParallelTest, SmallForwardsLeaveTheThreadCountAsTheyFoundIt) {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  const Gpt2Config config = testing::TinyConfig();
  Gpt2Model model(config, Gpt2Weights::Random(config, 1));
  torch::NoGradGuard no_grad;
  model.Forward({torch::tensor({1, 2}, torch::kInt64).view({2, 1}), {}});
  EXPECT_EQ(at::get_num_threads(), 2);
  std::mutex mu;
  std::set<std::thread::id> threads;
  at::parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mu);
    threads.insert(std::this_thread::get_id());
  });
  at::set_num_threads(saved);
  EXPECT_EQ(threads.size(), 2u);
}

}  // namespace
}  // namespace romed
