#include "server/session/edit_codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/core/torch_guard.h"

namespace romed {
namespace {

// Tensor bytes are copied as they lie in memory; the format is little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "edit_codec stores tensors as little-endian bytes");

using Json = nlohmann::json;

// JSON has no NaN or infinity; a diverged loss curve may hold them.
Json FloatToJson(double value) {
  if (std::isfinite(value)) return value;
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

double FloatFromJson(const Json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string text = j.get<std::string>();
  if (text == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (text == "inf") return std::numeric_limits<double>::infinity();
  if (text == "-inf") return -std::numeric_limits<double>::infinity();
  throw std::runtime_error("not a number: \"" + text + "\"");
}

Json RewriteToJson(const RewriteRecord& r) {
  return Json{{"prompt", r.prompt},
              {"subject", r.subject},
              {"target_new", r.target_new},
              {"target_true", r.target_true}};
}

RewriteRecord RewriteFromJson(const Json& j) {
  RewriteRecord r;
  r.prompt = j.at("prompt").get<std::string>();
  r.subject = j.at("subject").get<std::string>();
  r.target_new = j.at("target_new").get<std::string>();
  r.target_true = j.at("target_true").get<std::string>();
  return r;
}

Json ResultToJson(const RewriteResultRecord& r) {
  Json loss = Json::array();
  for (float v : r.loss_curve) loss.push_back(FloatToJson(v));
  return Json{{"rewrite", RewriteToJson(r.rewrite)},
              {"layer", r.layer},
              {"fact_token", r.fact_token},
              {"p_new_before", FloatToJson(r.p_new_before)},
              {"p_new_after", FloatToJson(r.p_new_after)},
              {"p_true_before", FloatToJson(r.p_true_before)},
              {"p_true_after", FloatToJson(r.p_true_after)},
              {"delta_u_norm", FloatToJson(r.delta_u_norm)},
              {"delta_lambda_norm", FloatToJson(r.delta_lambda_norm)},
              {"loss_curve", std::move(loss)},
              {"key_time_s", FloatToJson(r.key_time_s)},
              {"value_time_s", FloatToJson(r.value_time_s)},
              {"update_time_s", FloatToJson(r.update_time_s)},
              {"identity_covariance", r.identity_covariance},
              {"target_already_predicted", r.target_already_predicted},
              {"converged", r.converged},
              {"covariance_source", r.covariance_source},
              {"covariance_time_s", FloatToJson(r.covariance_time_s)}};
}

RewriteResultRecord ResultFromJson(const Json& j) {
  RewriteResultRecord r;
  r.rewrite = RewriteFromJson(j.at("rewrite"));
  r.layer = j.at("layer").get<int64_t>();
  r.fact_token = j.at("fact_token").get<std::string>();
  r.p_new_before = static_cast<float>(FloatFromJson(j.at("p_new_before")));
  r.p_new_after = static_cast<float>(FloatFromJson(j.at("p_new_after")));
  r.p_true_before = static_cast<float>(FloatFromJson(j.at("p_true_before")));
  r.p_true_after = static_cast<float>(FloatFromJson(j.at("p_true_after")));
  r.delta_u_norm = static_cast<float>(FloatFromJson(j.at("delta_u_norm")));
  r.delta_lambda_norm = static_cast<float>(FloatFromJson(j.at("delta_lambda_norm")));
  for (const Json& v : j.at("loss_curve")) {
    r.loss_curve.push_back(static_cast<float>(FloatFromJson(v)));
  }
  r.key_time_s = FloatFromJson(j.at("key_time_s"));
  r.value_time_s = FloatFromJson(j.at("value_time_s"));
  r.update_time_s = FloatFromJson(j.at("update_time_s"));
  r.identity_covariance = j.at("identity_covariance").get<bool>();
  // Fields added later: absent in older records.
  r.target_already_predicted = j.value("target_already_predicted", false);
  r.converged = j.value("converged", false);
  r.covariance_source = j.value("covariance_source", std::string());
  if (j.contains("covariance_time_s")) r.covariance_time_s = FloatFromJson(j["covariance_time_s"]);
  return r;
}

struct DtypeInfo {
  const char* name;
  torch::Dtype dtype;
  int64_t element_size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32, 4},
    {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2},
    {"F64", torch::kFloat64, 8},
};

}  // namespace

std::string EncodeEditRecord(const EditEntry& entry) {
  Json rewrites = Json::array();
  for (const RewriteRecord& r : entry.request.rewrites) rewrites.push_back(RewriteToJson(r));
  Json results = Json::array();
  for (const RewriteResultRecord& r : entry.results) results.push_back(ResultToJson(r));
  Json record{
      {"request",
       {{"rewrites", std::move(rewrites)}, {"hyperparameters", entry.request.hyperparameters}}},
      {"results", std::move(results)},
      {"total_time_s", FloatToJson(entry.total_time_s)}};
  return record.dump();
}

absl::Status DecodeEditRecord(std::string_view text, EditEntry& entry) {
  try {
    const Json record = Json::parse(text);
    const Json& request = record.at("request");
    EditRequestRecord decoded_request;
    for (const Json& r : request.at("rewrites")) {
      decoded_request.rewrites.push_back(RewriteFromJson(r));
    }
    decoded_request.hyperparameters =
        request.at("hyperparameters").get<std::map<std::string, std::string>>();
    std::vector<RewriteResultRecord> results;
    for (const Json& r : record.at("results")) results.push_back(ResultFromJson(r));
    entry.total_time_s = FloatFromJson(record.at("total_time_s"));
    entry.request = std::move(decoded_request);
    entry.results = std::move(results);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("edit record is malformed: ", e.what()));
  }
}

std::string EncodeLabels(const std::map<std::string, std::string>& labels) {
  return Json(labels).dump();
}

absl::StatusOr<std::map<std::string, std::string>> DecodeLabels(std::string_view text) {
  try {
    return Json::parse(text).get<std::map<std::string, std::string>>();
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("labels are malformed: ", e.what()));
  }
}

absl::StatusOr<EncodedVector> EncodeVector(const torch::Tensor& vector, std::string_view what) {
  if (!vector.defined() || vector.dim() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), " must be a 1-D tensor, got ",
                     vector.defined() ? std::to_string(vector.dim()) + "-D" : "undefined"));
  }
  for (const DtypeInfo& info : kDtypes) {
    if (vector.scalar_type() != info.dtype) continue;
    return GuardTorch(std::string(what), [&] {
      torch::Tensor cpu = vector.to(torch::kCPU).contiguous();
      EncodedVector out;
      out.dtype = info.name;
      out.size = cpu.numel();
      out.bytes.assign(static_cast<const char*>(cpu.data_ptr()),
                       static_cast<size_t>(out.size * info.element_size));
      return out;
    });
  }
  return absl::InvalidArgumentError(absl::StrCat(
      std::string(what), " has dtype ", std::string(c10::toString(vector.scalar_type())),
      "; deltas must be float32/16, bfloat16 or float64"));
}

absl::StatusOr<torch::Tensor> DecodeVector(std::string_view dtype, int64_t size,
                                           std::string_view bytes, std::string_view what) {
  for (const DtypeInfo& info : kDtypes) {
    if (dtype != info.name) continue;
    if (size < 0 || static_cast<int64_t>(bytes.size()) != size * info.element_size) {
      return absl::DataLossError(absl::StrCat(std::string(what), ": ", bytes.size(),
                                              " bytes do not hold ", size, " ", info.name,
                                              " elements"));
    }
    torch::Tensor out = torch::empty({size}, torch::TensorOptions().dtype(info.dtype));
    if (!bytes.empty()) std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
    return out;
  }
  return absl::DataLossError(
      absl::StrCat(std::string(what), ": unknown dtype \"", std::string(dtype), "\""));
}

}  // namespace romed
