// The intra-op pool really runs our at::parallel_for calls on several threads.
// at::parallel_for is an inline template: with Debian's OpenMP libtorch its
// parallel branch exists only in translation units compiled with -fopenmp
// (CMakeLists.txt links OpenMP::OpenMP_CXX through romed_torch). Built
// without it, every range below runs on the calling thread and this fails.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

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

}  // namespace
}  // namespace romed
