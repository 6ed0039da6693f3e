// OpenMP waiting policy for romed's programs.
//
// libtorch's intra-op threads are libgomp threads. By default they spin
// after each parallel region, waiting for the next one; on a machine shared
// with other work (a Kubernetes node, CI, a 2-vCPU VM) spinning threads steal
// the cores the next region needs, and a 2-thread decode step ran up to 7x
// slower than with one thread (bench/results/decode_cpu.md). With
// OMP_WAIT_POLICY=passive they sleep instead.
//
// libgomp reads the variable once, when it is loaded, before main() runs, so
// setting it in main() has no effect: the program has to execute itself
// again with the variable set.
#ifndef ROMED_SERVER_CORE_OPENMP_WAIT_H_
#define ROMED_SERVER_CORE_OPENMP_WAIT_H_

namespace romed {

// If OMP_WAIT_POLICY is unset, sets it to "passive" and re-executes the
// running program (/proc/self/exe) with the same `argv`; does not return on
// success. Returns if the variable was already set (the caller's choice is
// kept, e.g. OMP_WAIT_POLICY=active on a dedicated machine) or if the
// re-exec failed (then a warning naming `program` goes to stderr). Call it
// first in main(), before any thread starts.
void EnsurePassiveOpenMpWaiting(char** argv, const char* program);

}  // namespace romed

#endif  // ROMED_SERVER_CORE_OPENMP_WAIT_H_
