// Which BLAS libtorch actually calls at run time (for the startup log).
#ifndef ROMED_SERVER_MODEL_BLAS_INFO_H_
#define ROMED_SERVER_MODEL_BLAS_INFO_H_

#include <string>

namespace romed {

// The shared object that provides `sgemm_` in this process (e.g.
// ".../openblas-openmp/libblas.so.3"), with a note when it is the slow
// reference BLAS; "unknown" if it cannot be resolved.
std::string DescribeBlas();

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_BLAS_INFO_H_
