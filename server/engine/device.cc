#include "server/engine/device.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"

namespace romed {

absl::StatusOr<torch::Device> ParseDevice(std::string_view text_view) {
  // Debian's abseil has its own absl::string_view: StrCat takes a std::string.
  const std::string text(text_view);
  if (text == "cpu") return torch::Device(torch::kCPU);
  int index = 0;
  if (text == "cuda") {
    index = 0;
  } else if (!absl::StartsWith(text, "cuda:") ||
             !absl::SimpleAtoi(text.substr(5), &index) || index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--device=", text, " is not a device; use cpu, cuda or cuda:N"));
  }
  if (!torch::cuda::is_available()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--device=", text,
        ": this libtorch build has no usable CUDA (torch::cuda::is_available() is false; "
        "Debian's libtorch is CPU-only); use --device=cpu or a CUDA build of romed"));
  }
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= count) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--device=", text, ": only ", count, " CUDA device(s) are visible (cuda:0..cuda:",
        count - 1, ")"));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

absl::StatusOr<torch::Dtype> ParseDtype(std::string_view text_view) {
  const std::string text(text_view);
  if (text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "float16" || text == "fp16") return torch::kFloat16;
  if (text == "bfloat16" || text == "bf16") return torch::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("--dtype=", text, " is not supported; use float32, float16 or bfloat16"));
}

std::string DtypeName(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return "float32";
    case torch::kFloat16:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    default:
      return std::string(c10::toString(dtype));
  }
}

std::string DeviceName(const torch::Device& device) {
  if (device.is_cuda()) return absl::StrCat("cuda:", device.has_index() ? device.index() : 0);
  return device.str();
}

}  // namespace romed
