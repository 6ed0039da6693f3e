// Raises every explicitly requested thread stack size to at least 1 MiB.
//
// Why: prometheus::Exposer serves /metrics with civetweb, whose threads ask
// pthread_attr_setstacksize for 100 KiB stacks (Debian's build). glibc puts
// the static TLS of every library loaded at startup at the top of each
// thread's stack; with libtorch linked (libopenblas 60 KiB, libglog 30 KiB,
// libtorch_cpu 10 KiB, ...) that is ~106 KiB, so pthread_create fails with
// EINVAL and the Exposer throws "null context when constructing CivetServer.
// Possible problem binding to port." (civetweb logs "Cannot create threads").
//
// Defining pthread_attr_setstacksize in the executable interposes the libc
// one for every shared library (calls go through the PLT); requests below the
// floor are raised, everything else passes through unchanged. Linked into
// the romed executable only (an OBJECT library, so it is never dropped).
#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <cstddef>

namespace {

constexpr size_t kMinThreadStackBytes = size_t{1} << 20;

using SetStackSizeFn = int (*)(pthread_attr_t*, size_t);

SetStackSizeFn RealSetStackSize() {
  static const SetStackSizeFn real =
      reinterpret_cast<SetStackSizeFn>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  return real;
}

}  // namespace

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t stacksize) {
  const SetStackSizeFn real = RealSetStackSize();
  if (real == nullptr) return 0;  // keep the default stack (8 MiB), which fits
  return real(attr, std::max(stacksize, kMinThreadStackBytes));
}
