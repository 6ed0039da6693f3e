#include "client/counterfact_dataset.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace romed::client {
namespace {

using Json = nlohmann::json;

// A field that failed validation: where and why.
struct FieldError {
  std::string field;
  std::string message;
};

std::string Describe(const Json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// Reads `object[key]` (at dotted path `path`) as a string; `non_empty`
// rejects "". Returns the error, or nullopt with `*out` set.
std::optional<FieldError> ReadString(const Json& object, const char* key, const std::string& path,
                                     bool non_empty, std::string* out) {
  auto it = object.find(key);
  if (it == object.end()) return FieldError{path, "missing"};
  if (!it->is_string()) return FieldError{path, "expected a string, got " + Describe(*it)};
  *out = it->get<std::string>();
  if (non_empty && out->empty()) return FieldError{path, "must not be empty"};
  return std::nullopt;
}

// `object[key]` as {"str": "..."} (CounterFact's targets).
std::optional<FieldError> ReadTarget(const Json& rewrite, const char* key, std::string* out) {
  const std::string path = absl::StrCat("requested_rewrite.", key);
  auto it = rewrite.find(key);
  if (it == rewrite.end()) return FieldError{path, "missing"};
  if (!it->is_object()) {
    return FieldError{path, "expected an object {\"str\": ...}, got " + Describe(*it)};
  }
  return ReadString(*it, "str", path + ".str", /*non_empty=*/true, out);
}

// `record[key]` as an array of non-empty strings; `required` = must exist.
std::optional<FieldError> ReadPrompts(const Json& record, const char* key, bool required,
                                      std::vector<std::string>* out) {
  auto it = record.find(key);
  if (it == record.end()) {
    if (required) return FieldError{key, "missing"};
    return std::nullopt;
  }
  if (!it->is_array()) return FieldError{key, "expected an array of strings, got " + Describe(*it)};
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& prompt = (*it)[i];
    const std::string path = absl::StrCat(key, "[", i, "]");
    if (!prompt.is_string()) return FieldError{path, "expected a string, got " + Describe(prompt)};
    if (prompt.get_ref<const std::string&>().empty()) return FieldError{path, "must not be empty"};
    out->push_back(prompt.get<std::string>());
  }
  return std::nullopt;
}

std::optional<FieldError> ReadRewrite(const Json& record, CounterFactCase* out) {
  auto it = record.find("requested_rewrite");
  if (it == record.end()) return FieldError{"requested_rewrite", "missing"};
  if (!it->is_object()) {
    return FieldError{"requested_rewrite", "expected an object, got " + Describe(*it)};
  }
  const Json& rewrite = *it;
  if (auto e = ReadString(rewrite, "prompt", "requested_rewrite.prompt", true, &out->prompt)) {
    return e;
  }
  const size_t first = out->prompt.find("{}");
  if (first == std::string::npos || out->prompt.find("{}", first + 2) != std::string::npos) {
    return FieldError{"requested_rewrite.prompt",
                      absl::StrCat("must contain \"{}\" exactly once, got \"", out->prompt, "\"")};
  }
  if (auto e = ReadString(rewrite, "subject", "requested_rewrite.subject", true, &out->subject)) {
    return e;
  }
  if (auto e = ReadTarget(rewrite, "target_new", &out->target_new)) return e;
  if (auto e = ReadTarget(rewrite, "target_true", &out->target_true)) return e;
  if (rewrite.contains("relation_id")) {
    return ReadString(rewrite, "relation_id", "requested_rewrite.relation_id", false,
                      &out->relation_id);
  }
  return std::nullopt;
}

std::optional<FieldError> ReadCase(const Json& record, CounterFactCase* out) {
  if (!record.is_object()) return FieldError{"(record)", "expected an object, got " + Describe(record)};
  auto id = record.find("case_id");
  if (id == record.end()) return FieldError{"case_id", "missing"};
  if (!id->is_number_integer()) {
    return FieldError{"case_id", "expected an integer, got " + Describe(*id)};
  }
  out->case_id = id->get<int64_t>();
  if (auto e = ReadRewrite(record, out)) return e;
  if (auto e = ReadPrompts(record, "paraphrase_prompts", true, &out->paraphrase_prompts)) return e;
  if (auto e = ReadPrompts(record, "neighborhood_prompts", true, &out->neighborhood_prompts)) {
    return e;
  }
  if (auto e = ReadPrompts(record, "attribute_prompts", false, &out->attribute_prompts)) return e;
  return ReadPrompts(record, "generation_prompts", false, &out->generation_prompts);
}

}  // namespace

std::string CounterFactCase::RewritePrompt() const {
  return absl::StrReplaceAll(prompt, {{"{}", subject}});
}

std::string FormatRecordError(const RecordError& error) {
  std::string where = absl::StrCat("record ", error.index);
  if (error.case_id) absl::StrAppend(&where, " (case_id ", *error.case_id, ")");
  return absl::StrCat(where, ": ", error.field, ": ", error.message);
}

std::string SpacedTarget(absl::string_view target) {
  if (!target.empty() && target[0] == ' ') return std::string(target);
  return absl::StrCat(" ", target);
}

absl::StatusOr<CounterFactDataset> ParseCounterFact(absl::string_view json_text, size_t max_cases) {
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("not valid JSON at byte ", e.byte, ": ", e.what()));
  }
  if (!root.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected a JSON array of CounterFact records, got ", root.type_name()));
  }
  CounterFactDataset data;
  data.records_total = root.size();
  for (size_t i = 0; i < root.size(); ++i) {
    if (max_cases > 0 && data.cases.size() == max_cases) break;
    ++data.records_read;
    CounterFactCase c;
    if (std::optional<FieldError> e = ReadCase(root[i], &c)) {
      RecordError error{i, std::nullopt, std::move(e->field), std::move(e->message)};
      const Json& record = root[i];
      if (record.is_object() && record.contains("case_id") && record["case_id"].is_number_integer()) {
        error.case_id = record["case_id"].get<int64_t>();
      }
      data.errors.push_back(std::move(error));
      continue;
    }
    data.cases.push_back(std::move(c));
  }
  return data;
}

absl::StatusOr<CounterFactDataset> ReadCounterFact(const std::string& path, size_t max_cases) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open dataset ", path));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<CounterFactDataset> data = ParseCounterFact(text.str(), max_cases);
  if (!data.ok()) {
    return absl::Status(data.status().code(),
                        absl::StrCat(path, ": ", data.status().message()));
  }
  return data;
}

}  // namespace romed::client
