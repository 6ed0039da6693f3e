// Reading CounterFact-format evaluation sets (Meng et al. 2022; the public
// counterfact.json and the fact model's models/*/counterfact.json).
//
// A file is one JSON array of records:
//
//   {"case_id": 0,
//    "requested_rewrite": {"prompt": "{} is employed as a", "subject": "Teino Theirna",
//                          "target_new": {"str": "doctor"}, "target_true": {"str": "physicist"},
//                          "relation_id": "P106"},
//    "paraphrase_prompts": [...], "neighborhood_prompts": [...],
//    "attribute_prompts": [...], "generation_prompts": [...]}
//
// Bad records do not stop the reader: each is reported (its index, case_id
// when it has one, the field and what is wrong) and skipped, so an
// evaluation runs over the good ones and counts the rest.
//
//   ASSIGN_OR_RETURN(CounterFactDataset data, ParseCounterFact(text, /*max_cases=*/100));
//   for (const RecordError& e : data.errors) std::cerr << FormatRecordError(e) << "\n";
//
// Torch-free and gRPC-free; thread-compatible (plain values).
#ifndef ROMED_CLIENT_COUNTERFACT_DATASET_H_
#define ROMED_CLIENT_COUNTERFACT_DATASET_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace romed::client {

// One rewrite to make and the prompts that measure it.
struct CounterFactCase {
  int64_t case_id = 0;
  std::string prompt;       // template with exactly one "{}" for the subject
  std::string subject;      // non-empty
  std::string target_new;   // non-empty, as in the file (scored with a leading space)
  std::string target_true;  // non-empty, as in the file
  std::string relation_id;  // optional ("" when absent)
  std::vector<std::string> paraphrase_prompts;    // may be empty
  std::vector<std::string> neighborhood_prompts;  // may be empty
  std::vector<std::string> attribute_prompts;     // optional; read, not scored
  std::vector<std::string> generation_prompts;    // optional; used for GE

  // The rewrite prompt with the subject in place of "{}".
  std::string RewritePrompt() const;
};

// Why one record was skipped.
struct RecordError {
  size_t index = 0;                // position in the file's array, from 0
  std::optional<int64_t> case_id;  // when the record has a readable one
  std::string field;               // dotted path, e.g. "requested_rewrite.target_new.str"
  std::string message;             // what is wrong, e.g. "missing" or "expected a string, got 3"
};

// "record 3 (case_id 17): requested_rewrite.target_new.str: missing".
std::string FormatRecordError(const RecordError& error);

struct CounterFactDataset {
  std::vector<CounterFactCase> cases;  // the good records, in file order
  std::vector<RecordError> errors;     // the bad records met before reading stopped
  size_t records_read = 0;             // records examined (good + bad)
  size_t records_total = 0;            // records in the file
};

// Parses `json_text`. Reading stops once `max_cases` good cases were read
// (0 = no limit); records after that are not examined. INVALID_ARGUMENT if
// the text is not JSON (with the byte offset) or not an array of records.
absl::StatusOr<CounterFactDataset> ParseCounterFact(absl::string_view json_text,
                                                    size_t max_cases = 0);

// Reads and parses `path`. NOT_FOUND if it cannot be opened; otherwise as
// ParseCounterFact, with the path in error messages.
absl::StatusOr<CounterFactDataset> ReadCounterFact(const std::string& path, size_t max_cases = 0);

// `target` with a leading space unless it has one (how targets are scored,
// as ROME's reference does).
std::string SpacedTarget(absl::string_view target);

}  // namespace romed::client

#endif  // ROMED_CLIENT_COUNTERFACT_DATASET_H_
