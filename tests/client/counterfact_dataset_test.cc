// Reading CounterFact-format datasets (client/counterfact_dataset.h): good
// records, and bad ones named by record and field while the rest are read.
#include "client/counterfact_dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/testing/status_matchers.h"

namespace romed::client {
namespace {

using ::romed::testing::StatusIs;
using ::testing::HasSubstr;
using Json = nlohmann::json;

Json GoodRecord(int64_t case_id) {
  Json record = Json::parse(R"({
    "case_id": 0,
    "requested_rewrite": {"prompt": "{} is employed as a", "subject": "Teino Theirna",
                          "target_new": {"str": "doctor"}, "target_true": {"str": "physicist"},
                          "relation_id": "P106"},
    "paraphrase_prompts": ["By profession, Teino Theirna is a", "The occupation of Teino Theirna is"],
    "neighborhood_prompts": ["Famla Drinpeim is employed as a"],
    "attribute_prompts": ["Harlybruk Guva works as a"],
    "generation_prompts": ["Teino Theirna is employed as a"]})");
  record["case_id"] = case_id;
  return record;
}

// One bad record between two good ones: the error, and both good ones read.
RecordError OnlyError(const Json& bad) {
  const Json file = Json::array({GoodRecord(1), bad, GoodRecord(3)});
  absl::StatusOr<CounterFactDataset> data = ParseCounterFact(file.dump());
  EXPECT_TRUE(data.ok()) << data.status();
  if (!data.ok()) return {};
  EXPECT_EQ(data->cases.size(), 2u);
  EXPECT_EQ(data->records_read, 3u);
  EXPECT_EQ(data->errors.size(), 1u);
  return data->errors.empty() ? RecordError{} : data->errors[0];
}

TEST(CounterFactDatasetTest, ReadsEveryFieldOfAGoodRecord) {
  ASSERT_OK_AND_ASSIGN(CounterFactDataset data,
                       ParseCounterFact(Json::array({GoodRecord(7)}).dump()));
  ASSERT_EQ(data.cases.size(), 1u);
  EXPECT_TRUE(data.errors.empty());
  const CounterFactCase& c = data.cases[0];
  EXPECT_EQ(c.case_id, 7);
  EXPECT_EQ(c.prompt, "{} is employed as a");
  EXPECT_EQ(c.subject, "Teino Theirna");
  EXPECT_EQ(c.target_new, "doctor");
  EXPECT_EQ(c.target_true, "physicist");
  EXPECT_EQ(c.relation_id, "P106");
  EXPECT_EQ(c.paraphrase_prompts.size(), 2u);
  EXPECT_EQ(c.neighborhood_prompts[0], "Famla Drinpeim is employed as a");
  EXPECT_EQ(c.attribute_prompts.size(), 1u);
  EXPECT_EQ(c.generation_prompts.size(), 1u);
  EXPECT_EQ(c.RewritePrompt(), "Teino Theirna is employed as a");
}

TEST(CounterFactDatasetTest, OptionalFieldsMayBeAbsent) {
  Json record = GoodRecord(1);
  record.erase("attribute_prompts");
  record.erase("generation_prompts");
  record["requested_rewrite"].erase("relation_id");
  ASSERT_OK_AND_ASSIGN(CounterFactDataset data, ParseCounterFact(Json::array({record}).dump()));
  ASSERT_EQ(data.cases.size(), 1u);
  EXPECT_TRUE(data.cases[0].generation_prompts.empty());
  EXPECT_EQ(data.cases[0].relation_id, "");
}

TEST(CounterFactDatasetTest, NamesTheRecordAndFieldOfEachBadRecord) {
  Json record = GoodRecord(42);
  record["requested_rewrite"]["target_new"] = "doctor";  // not {"str": ...}
  RecordError e = OnlyError(record);
  EXPECT_EQ(e.index, 1u);
  EXPECT_EQ(e.case_id, 42);
  EXPECT_EQ(e.field, "requested_rewrite.target_new");
  EXPECT_EQ(FormatRecordError(e),
            "record 1 (case_id 42): requested_rewrite.target_new: expected an object "
            "{\"str\": ...}, got \"doctor\"");

  record = GoodRecord(5);
  record["requested_rewrite"]["target_true"]["str"] = "";
  e = OnlyError(record);
  EXPECT_EQ(e.field, "requested_rewrite.target_true.str");
  EXPECT_EQ(e.message, "must not be empty");

  record = GoodRecord(5);
  record["requested_rewrite"].erase("subject");
  EXPECT_EQ(OnlyError(record).field, "requested_rewrite.subject");
  EXPECT_EQ(OnlyError(record).message, "missing");
}

TEST(CounterFactDatasetTest, RejectsPromptsWithoutExactlyOnePlaceholder) {
  Json record = GoodRecord(1);
  record["requested_rewrite"]["prompt"] = "Teino Theirna works as a";
  RecordError e = OnlyError(record);
  EXPECT_EQ(e.field, "requested_rewrite.prompt");
  EXPECT_THAT(e.message, HasSubstr("exactly once"));
  record["requested_rewrite"]["prompt"] = "{} and {} work as";
  EXPECT_EQ(OnlyError(record).field, "requested_rewrite.prompt");
}

TEST(CounterFactDatasetTest, RejectsBadIdsAndPromptLists) {
  Json record = GoodRecord(1);
  record["case_id"] = "one";
  RecordError e = OnlyError(record);
  EXPECT_EQ(e.field, "case_id");
  EXPECT_FALSE(e.case_id.has_value());
  EXPECT_EQ(FormatRecordError(e), "record 1: case_id: expected an integer, got \"one\"");

  record = GoodRecord(1);
  record.erase("case_id");
  EXPECT_EQ(OnlyError(record).field, "case_id");

  record = GoodRecord(8);
  record["paraphrase_prompts"] = "one prompt";
  EXPECT_EQ(OnlyError(record).field, "paraphrase_prompts");

  record = GoodRecord(8);
  record["neighborhood_prompts"] = Json::array({"ok", 3});
  e = OnlyError(record);
  EXPECT_EQ(e.field, "neighborhood_prompts[1]");
  EXPECT_EQ(e.message, "expected a string, got 3");

  record = GoodRecord(8);
  record.erase("neighborhood_prompts");
  EXPECT_EQ(OnlyError(record).field, "neighborhood_prompts");

  record = GoodRecord(8);
  record["generation_prompts"] = Json::array({""});
  EXPECT_EQ(OnlyError(record).field, "generation_prompts[0]");

  EXPECT_EQ(OnlyError(Json(17)).field, "(record)");
  EXPECT_EQ(OnlyError(Json::array()).field, "(record)");
}

TEST(CounterFactDatasetTest, StopsAfterMaxCasesGoodRecords) {
  Json bad = GoodRecord(2);
  bad.erase("requested_rewrite");
  const Json file = Json::array({GoodRecord(1), bad, GoodRecord(3), GoodRecord(4)});
  ASSERT_OK_AND_ASSIGN(CounterFactDataset data, ParseCounterFact(file.dump(), 2));
  ASSERT_EQ(data.cases.size(), 2u);
  EXPECT_EQ(data.cases[1].case_id, 3);
  EXPECT_EQ(data.errors.size(), 1u);
  EXPECT_EQ(data.records_read, 3u);
  EXPECT_EQ(data.records_total, 4u);
}

TEST(CounterFactDatasetTest, AFileThatIsNotAnArrayOfRecordsIsAnError) {
  EXPECT_THAT(ParseCounterFact("[{\"case_id\": 1,"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid JSON at byte")));
  EXPECT_THAT(ParseCounterFact("{\"case_id\": 1}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected a JSON array")));
  ASSERT_OK_AND_ASSIGN(CounterFactDataset empty, ParseCounterFact("[]"));
  EXPECT_TRUE(empty.cases.empty());
}

TEST(CounterFactDatasetTest, ReadsFilesAndNamesThePathInErrors) {
  EXPECT_THAT(ReadCounterFact("/nonexistent/counterfact.json"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/counterfact.json")));
  const std::string path = ::testing::TempDir() + "/counterfact_dataset_test.json";
  std::ofstream(path) << "[1, 2";
  EXPECT_THAT(ReadCounterFact(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path + ": not valid JSON")));
  std::ofstream(path, std::ios::trunc) << Json::array({GoodRecord(9)}).dump();
  ASSERT_OK_AND_ASSIGN(CounterFactDataset data, ReadCounterFact(path));
  EXPECT_EQ(data.cases.at(0).case_id, 9);
}

TEST(SpacedTargetTest, AddsOneLeadingSpaceUnlessPresent) {
  EXPECT_EQ(SpacedTarget("Paris"), " Paris");
  EXPECT_EQ(SpacedTarget(" Paris"), " Paris");
}

}  // namespace
}  // namespace romed::client
