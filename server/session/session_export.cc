#include "server/session/session_export.h"

#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/model/gpt2_weights.h"
#include "server/model/safetensors.h"
#include "server/session/edit_codec.h"

namespace romed {
namespace {

using Json = nlohmann::json;
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

constexpr char kFileName[] = "session export";

std::string TensorName(size_t entry, size_t delta, const char* part) {
  return absl::StrCat("edits.", entry, ".deltas.", delta, ".", part);
}

absl::Status Malformed(const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("not a valid romed session export (", kSessionExportFormat,
                   "; make one with ExportSession / romectl export): ", what));
}

// Checks one delta vector of the file and returns it.
absl::StatusOr<torch::Tensor> ReadVector(const SafetensorsFile& file, const std::string& name,
                                         int64_t expected_size, std::set<std::string>& used) {
  if (!file.Contains(name)) return Malformed(absl::StrCat("tensor \"", name, "\" is missing"));
  used.insert(name);
  ASSIGN_OR_RETURN(torch::Tensor tensor, file.Read(name));
  if (tensor.dim() != 1 || tensor.size(0) != expected_size) {
    return Malformed(absl::StrCat("tensor \"", name, "\" has shape ",
                                  ShapeToString(tensor.sizes().vec()), ", expected [",
                                  expected_size, "]"));
  }
  if (!tensor.is_floating_point()) {
    return Malformed(absl::StrCat("tensor \"", name, "\" is not floating point"));
  }
  ASSIGN_OR_RETURN(const bool finite, GuardTorch("checking a delta", [&] {
                     return tensor.isfinite().all().item<bool>();
                   }));
  if (!finite) return Malformed(absl::StrCat("tensor \"", name, "\" holds NaN or infinity"));
  return tensor;
}

absl::StatusOr<EditEntry> DecodeEntry(const Json& j, const SafetensorsFile& file,
                                      const ExportModelShape& shape, std::set<std::string>& used) {
  EditEntry entry;
  entry.edit_id = j.at("edit_id").get<int64_t>();
  entry.created = absl::FromUnixMicros(j.at("created_unix_us").get<int64_t>());
  RETURN_IF_ERROR(DecodeEditRecord(j.at("record").dump(), entry));
  const Json& deltas = j.at("deltas");
  if (!deltas.is_array() || deltas.empty()) return Malformed("an edit without deltas");
  for (size_t d = 0; d < deltas.size(); ++d) {
    RankOneDelta delta;
    delta.layer = deltas[d].at("layer").get<int64_t>();
    if (delta.layer < 0 || delta.layer >= shape.n_layer) {
      return Malformed(absl::StrCat("delta ", d, " is at layer ", delta.layer,
                                    " of a model with ", shape.n_layer, " layers"));
    }
    ASSIGN_OR_RETURN(delta.u, ReadVector(file, deltas[d].at("u").get<std::string>(),
                                         shape.mlp_width, used));
    ASSIGN_OR_RETURN(delta.lambda, ReadVector(file, deltas[d].at("lambda").get<std::string>(),
                                              shape.n_embd, used));
    entry.deltas.push_back(std::move(delta));
  }
  return entry;
}

absl::StatusOr<SessionExport> DecodeMetadata(const SafetensorsFile& file) {
  const std::map<std::string, std::string>& meta = file.metadata();
  auto get = [&](const char* key) -> absl::StatusOr<std::string> {
    auto it = meta.find(key);
    if (it == meta.end()) return Malformed(absl::StrCat("metadata has no \"", key, "\""));
    return it->second;
  };
  ASSIGN_OR_RETURN(const std::string format, get("format"));
  if (format != kSessionExportFormat) {
    return Malformed(absl::StrCat("its format is \"", format, "\""));
  }
  SessionExport data;
  ASSIGN_OR_RETURN(data.model_checksum, get("model_checksum"));
  ASSIGN_OR_RETURN(const std::string shape_text, get("model_shape"));
  ASSIGN_OR_RETURN(const std::string session_text, get("session"));
  ASSIGN_OR_RETURN(const std::string edits_text, get("edits"));
  std::set<std::string> used;
  try {
    const Json shape = Json::parse(shape_text);
    data.shape = {shape.at("n_layer").get<int64_t>(), shape.at("n_embd").get<int64_t>(),
                  shape.at("mlp_width").get<int64_t>()};
    const Json session = Json::parse(session_text);
    data.session_id = session.at("id").get<std::string>();
    data.session_name = session.at("name").get<std::string>();
    data.session_labels = session.at("labels").get<std::map<std::string, std::string>>();
    const Json edits = Json::parse(edits_text);
    if (!edits.is_array()) return Malformed("metadata \"edits\" is not a list");
    for (size_t i = 0; i < edits.size(); ++i) {
      absl::StatusOr<EditEntry> entry = DecodeEntry(edits[i], file, data.shape, used);
      if (!entry.ok()) {
        return absl::Status(entry.status().code(),
                            absl::StrCat("edit ", i, ": ", entry.status().message()));
      }
      data.edits.push_back(*std::move(entry));
    }
  } catch (const std::exception& e) {
    return Malformed(absl::StrCat("metadata: ", e.what()));
  }
  for (const auto& [name, entry] : file.entries()) {
    if (used.count(name) == 0) return Malformed(absl::StrCat("unexpected tensor \"", name, "\""));
  }
  return data;
}

}  // namespace

absl::StatusOr<std::string> EncodeSessionExport(const SessionExport& data) {
  NamedTensors tensors;
  Json edits = Json::array();
  for (size_t i = 0; i < data.edits.size(); ++i) {
    const EditEntry& entry = data.edits[i];
    Json deltas = Json::array();
    for (size_t d = 0; d < entry.deltas.size(); ++d) {
      const RankOneDelta& delta = entry.deltas[d];
      const std::string u = TensorName(i, d, "u"), lambda = TensorName(i, d, "lambda");
      // EncodeVector checks shape and dtype (and copies to the CPU).
      RETURN_IF_ERROR(EncodeVector(delta.u, u).status());
      RETURN_IF_ERROR(EncodeVector(delta.lambda, lambda).status());
      tensors.emplace_back(u, delta.u);
      tensors.emplace_back(lambda, delta.lambda);
      deltas.push_back({{"layer", delta.layer}, {"u", u}, {"lambda", lambda}});
    }
    edits.push_back({{"edit_id", entry.edit_id},
                     {"created_unix_us", absl::ToUnixMicros(entry.created)},
                     {"record", Json::parse(EncodeEditRecord(entry))},
                     {"deltas", std::move(deltas)}});
  }
  const Json shape{{"n_layer", data.shape.n_layer},
                   {"n_embd", data.shape.n_embd},
                   {"mlp_width", data.shape.mlp_width}};
  const Json session{
      {"id", data.session_id}, {"name", data.session_name}, {"labels", data.session_labels}};
  const std::map<std::string, std::string> metadata{{"format", kSessionExportFormat},
                                                    {"model_checksum", data.model_checksum},
                                                    {"model_shape", shape.dump()},
                                                    {"session", session.dump()},
                                                    {"edits", edits.dump()}};
  return SerializeSafetensors(tensors, metadata);
}

absl::StatusOr<SessionExport> DecodeSessionExport(std::string bytes) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::FromBytes(std::move(bytes), kFileName);
  if (!file.ok()) return Malformed(std::string(file.status().message()));
  return DecodeMetadata(**file);
}

}  // namespace romed
