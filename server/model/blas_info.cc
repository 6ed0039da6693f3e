#include "server/model/blas_info.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

namespace romed {
namespace {

// The Debian reference BLAS lives in .../blas/libblas.so.3; it is correct but
// an order of magnitude slower than OpenBLAS for the GEMMs of a forward pass.
bool IsReferenceBlas(const std::string& path) {
  return path.find("/blas/") != std::string::npos && path.find("openblas") == std::string::npos;
}

}  // namespace

std::string DescribeBlas() {
  void* symbol = dlsym(RTLD_DEFAULT, "sgemm_");
  if (symbol == nullptr) return "unknown";
  Dl_info info;
  if (dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) return "unknown";
  // The loader reports the name it opened, often Debian's alternatives
  // symlink (libblas.so.3); the resolved path says which BLAS it is.
  std::string path = info.dli_fname;
  char resolved[PATH_MAX];
  if (realpath(info.dli_fname, resolved) != nullptr) path = resolved;
  if (IsReferenceBlas(path)) {
    path += " (reference BLAS: slow; install libopenblas0-openmp)";
  }
  return path;
}

}  // namespace romed
