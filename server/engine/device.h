// Parsing and naming of --device and --dtype values.
//
//   ASSIGN_OR_RETURN(torch::Device device, ParseDevice("cuda:1"));
#ifndef ROMED_SERVER_ENGINE_DEVICE_H_
#define ROMED_SERVER_ENGINE_DEVICE_H_

#include <string>
#include <string_view>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace romed {

// "cpu", "cuda" (= cuda:0) or "cuda:N". InvalidArgumentError for any other
// spelling; FailedPreconditionError when CUDA is asked for and this libtorch
// has none (Debian's is CPU-only) or has fewer devices than N + 1.
absl::StatusOr<torch::Device> ParseDevice(std::string_view text);

// "float32", "float16" or "bfloat16" (also "fp32", "fp16", "bf16").
// InvalidArgumentError otherwise.
absl::StatusOr<torch::Dtype> ParseDtype(std::string_view text);

// "float32", "float16", "bfloat16" (the names ParseDtype accepts).
std::string DtypeName(torch::Dtype dtype);

// "cpu", "cuda:0".
std::string DeviceName(const torch::Device& device);

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_DEVICE_H_
