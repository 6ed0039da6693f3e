#include "server/core/openmp_wait.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace romed {

void EnsurePassiveOpenMpWaiting(char** argv, const char* program) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "%s: re-executing with OMP_WAIT_POLICY=passive failed (%s); OpenMP threads "
               "will spin between parallel regions\n", program, std::strerror(errno));
}

}  // namespace romed
