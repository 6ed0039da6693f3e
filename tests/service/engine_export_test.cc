// Engine: ExportSession, ImportSession and ExportModel on a tiny random
// checkpoint (no gRPC): an export imported into another session or another
// engine reproduces the session bit for bit and survives a restart; a merged
// checkpoint loaded as a base model equals the session's logits to 1e-4;
// every bad input has its code and changes nothing.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/engine/engine.h"
#include "server/session/edit_codec.h"
#include "tests/service/edit_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

namespace fs = std::filesystem;
using ::romed::testing::EditTestOptions;
using ::romed::testing::MakeEditEngine;
using ::romed::testing::OutputsOf;
using ::romed::testing::QuickEdit;
using ::romed::testing::StatusIs;
using ::romed::testing::TestRewrite;
using ::testing::AllOf;
using ::testing::HasSubstr;

class EngineExportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::WriteEditTestCheckpoint());
    other_dir_ = new std::string(testing::WriteEditTestCheckpoint(/*seed=*/8));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    fs::remove_all(*other_dir_);
    delete dir_;
    delete other_dir_;
  }
  void SetUp() override {
    engine_ = MakeEditEngine(*dir_, EditTestOptions());
    ASSERT_NE(engine_, nullptr);
    scratch_ = testing::MakeTempDir("romed-export-test");
  }
  void TearDown() override { fs::remove_all(scratch_); }

  std::string NewSession(Engine& engine, const std::string& name = "") {
    CreateSessionRequest request;
    request.name = name;
    request.labels = {{"team", "nlp"}};
    absl::StatusOr<std::shared_ptr<const SessionState>> session = engine.CreateSession(request);
    EXPECT_OK(session.status());
    return session.ok() ? (*session)->info.id : "";
  }

  // A session with two entries (the second of two rewrites).
  std::string EditedSession() {
    const std::string id = NewSession(*engine_, "source");
    EXPECT_OK(engine_->Edit(QuickEdit(id)).status());
    EXPECT_OK(engine_->Edit(QuickEdit(id, {TestRewrite("Carl Dahl", "Rome"),
                                           TestRewrite("Eva Ek", "Lima")}))
                  .status());
    return id;
  }

  std::string ExportFile(const std::string& id) {
    absl::StatusOr<ExportedSession> exported = engine_->ExportSession(id);
    EXPECT_OK(exported.status());
    return exported.ok() ? exported->file : "";
  }

  int64_t SessionCount(Engine& engine) {
    absl::StatusOr<SessionListPage> page = engine.ListSessions(0, "");
    EXPECT_OK(page.status());
    return page.ok() ? static_cast<int64_t>(page->sessions.size()) : -1;
  }

  static std::string* dir_;
  static std::string* other_dir_;
  std::unique_ptr<Engine> engine_;
  std::string scratch_;
};
std::string* EngineExportTest::dir_ = nullptr;
std::string* EngineExportTest::other_dir_ = nullptr;

TEST_F(EngineExportTest, ExportThenImportReproducesOutputsAndRecords) {
  const std::string source = EditedSession();
  absl::StatusOr<ExportedSession> exported = engine_->ExportSession(source);
  ASSERT_OK(exported.status());
  EXPECT_EQ(exported->num_edits, 2);
  EXPECT_EQ(exported->num_deltas, 3);
  EXPECT_EQ(exported->model_checksum, engine_->checksum());

  ImportSessionRequest request;
  request.file = exported->file;
  absl::StatusOr<ImportSessionResult> imported = engine_->ImportSession(request);
  ASSERT_OK(imported.status());
  EXPECT_TRUE(imported->created);
  EXPECT_NE(imported->session->info.id, source);
  EXPECT_EQ(imported->session->info.name, "source");  // the file's name and labels
  EXPECT_EQ(imported->session->info.labels.at("team"), "nlp");
  EXPECT_EQ(imported->source_session_id, source);
  EXPECT_EQ(imported->source_edit_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(OutputsOf(*engine_, imported->session->info.id) == OutputsOf(*engine_, source));
  EXPECT_FALSE(OutputsOf(*engine_, imported->session->info.id) == OutputsOf(*engine_, ""));

  absl::StatusOr<std::vector<EditEntry>> original = engine_->ListEdits(source);
  absl::StatusOr<std::vector<EditEntry>> copy = engine_->ListEdits(imported->session->info.id);
  ASSERT_OK(original.status());
  ASSERT_OK(copy.status());
  ASSERT_EQ(copy->size(), 2u);
  for (size_t i = 0; i < copy->size(); ++i) {
    EXPECT_EQ((*copy)[i].edit_id, (*original)[i].edit_id);
    EXPECT_EQ((*copy)[i].created, (*original)[i].created);
    EXPECT_EQ(EncodeEditRecord((*copy)[i]), EncodeEditRecord((*original)[i]));
  }
}

TEST_F(EngineExportTest, ImportOnAnotherEngineIsDurableAcrossARestart) {
  const std::string source = EditedSession();
  const std::string file = ExportFile(source);
  const std::string state_dir = scratch_ + "/state";
  std::string imported_id;
  {
    std::unique_ptr<Engine> other = MakeEditEngine(*dir_, EditTestOptions(state_dir));
    ASSERT_NE(other, nullptr);
    const std::string target = NewSession(*other);  // an existing, empty session
    ImportSessionRequest request;
    request.file = file;
    request.session_id = target;
    absl::StatusOr<ImportSessionResult> imported = other->ImportSession(request);
    ASSERT_OK(imported.status());
    EXPECT_FALSE(imported->created);
    EXPECT_EQ(imported->session->info.id, target);
    imported_id = target;
  }
  std::unique_ptr<Engine> restarted = MakeEditEngine(*dir_, EditTestOptions(state_dir));
  ASSERT_NE(restarted, nullptr);
  EXPECT_TRUE(OutputsOf(*restarted, imported_id) == OutputsOf(*engine_, source));
  absl::StatusOr<std::vector<EditEntry>> edits = restarted->ListEdits(imported_id);
  ASSERT_OK(edits.status());
  ASSERT_EQ(edits->size(), 2u);
  EXPECT_EQ((*edits)[1].request.rewrites[1].target_new, "Lima");
}

TEST_F(EngineExportTest, ImportOfAnotherModelsFileNamesBothChecksums) {
  std::unique_ptr<Engine> other = MakeEditEngine(*other_dir_, EditTestOptions());
  ASSERT_NE(other, nullptr);
  ASSERT_NE(other->checksum(), engine_->checksum());
  ImportSessionRequest request;
  request.file = ExportFile(EditedSession());
  EXPECT_THAT(other->ImportSession(request),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(engine_->checksum()), HasSubstr(other->checksum()))));
  EXPECT_EQ(SessionCount(*other), 0);
}

TEST_F(EngineExportTest, CorruptTruncatedOrForeignFilesAreInvalidAndChangeNothing) {
  const std::string file = ExportFile(EditedSession());
  const int64_t sessions = SessionCount(*engine_);
  std::string corrupt_header = file;
  corrupt_header[12] = '\x01';
  std::string corrupt_metadata = file;
  corrupt_metadata.replace(corrupt_metadata.find("romed.session_export.v1"), 5, "xxxxx");
  for (const std::string& bad :
       {std::string(), file.substr(0, 5), file.substr(0, file.size() / 2),
        file.substr(0, file.size() - 1), corrupt_header, corrupt_metadata,
        std::string("not a safetensors file at all")}) {
    ImportSessionRequest request;
    request.file = bad;
    EXPECT_THAT(engine_->ImportSession(request), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad.size() << " bytes";
  }
  EXPECT_EQ(SessionCount(*engine_), sessions);
}

TEST_F(EngineExportTest, ImportNeedsAnEmptyKnownSessionWithinTheEditLimit) {
  const std::string source = EditedSession();
  const std::string file = ExportFile(source);
  ImportSessionRequest request;
  request.file = file;
  request.session_id = "s-0000000000000000";
  EXPECT_THAT(engine_->ImportSession(request), StatusIs(absl::StatusCode::kNotFound));
  request.session_id = source;  // holds edits
  EXPECT_THAT(engine_->ImportSession(request),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("new session")));
  request.name = "named";  // a name is only for new sessions
  EXPECT_THAT(engine_->ImportSession(request), StatusIs(absl::StatusCode::kInvalidArgument));

  EngineOptions tight = EditTestOptions();
  tight.limits.max_edits_per_session = 1;
  std::unique_ptr<Engine> small = MakeEditEngine(*dir_, tight);
  ASSERT_NE(small, nullptr);
  const std::string empty = NewSession(*small);
  ImportSessionRequest into_small;
  into_small.file = file;
  EXPECT_THAT(small->ImportSession(into_small),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max_edits_per_session")));
  into_small.session_id = empty;
  EXPECT_THAT(small->ImportSession(into_small), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(SessionCount(*small), 1);
}

TEST_F(EngineExportTest, ExportRefusesUnknownAndEmptySessions) {
  EXPECT_THAT(engine_->ExportSession(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(engine_->ExportSession("s-0000000000000000"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(engine_->ExportSession(NewSession(*engine_)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no edits")));
}

// Logits [1, T, V] of `prompt` (byte-level ids) on `model` with `view`.
torch::Tensor Logits(const Gpt2Model& model, const std::shared_ptr<const EditView>& view) {
  std::vector<int64_t> ids;
  for (unsigned char c : std::string("Anna Berg lives in Oslo; Carl Dahl lives in")) ids.push_back(c);
  ForwardInput input;
  input.tokens = torch::tensor(ids, torch::kInt64).unsqueeze(0);
  RowEdits edits;
  ForwardOptions options;
  if (view != nullptr) {
    edits.views = {view};
    options.edits = &edits;
  }
  torch::NoGradGuard no_grad;
  return model.Forward(input, options);
}

TEST_F(EngineExportTest, MergedCheckpointEqualsTheSessionToOneInTenThousand) {
  const std::string source = EditedSession();
  ExportModelRequest request;
  request.session_id = source;
  request.out_dir = scratch_ + "/merged";
  absl::StatusOr<ExportModelResult> result = engine_->ExportModel(request);
  ASSERT_OK(result.status());
  EXPECT_EQ(result->num_deltas, 3);
  for (const char* file : {"config.json", "model.safetensors", "vocab.json", "merges.txt"}) {
    EXPECT_TRUE(fs::exists(fs::path(request.out_dir) / file)) << file;
  }

  std::unique_ptr<Engine> merged = MakeEditEngine(request.out_dir, EditTestOptions());
  ASSERT_NE(merged, nullptr);
  EXPECT_NE(merged->checksum(), engine_->checksum());
  absl::StatusOr<std::shared_ptr<const EditView>> view = engine_->SessionView(source);
  ASSERT_OK(view.status());
  const torch::Tensor session_logits = Logits(engine_->model(), *view);
  const torch::Tensor merged_logits = Logits(merged->model(), nullptr);
  const torch::Tensor base_logits = Logits(engine_->model(), nullptr);
  const double diff = (session_logits - merged_logits).abs().max().item<double>();
  const double edit_effect = (session_logits - base_logits).abs().max().item<double>();
  EXPECT_LT(diff, 1e-4);
  EXPECT_GT(edit_effect, 1e-2);  // the comparison is not vacuous
  std::cout << "max |logit(session) - logit(merged)| = " << diff
            << ", max |logit(session) - logit(base)| = " << edit_effect << "\n";
  EXPECT_EQ(OutputsOf(*merged, "").generated, OutputsOf(*engine_, source).generated);
}

TEST_F(EngineExportTest, ExportModelRefusesAnExistingPathUnlessTold) {
  const std::string source = EditedSession();
  ExportModelRequest request;
  request.session_id = source;
  request.out_dir = scratch_;  // exists
  EXPECT_THAT(engine_->ExportModel(request),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("overwrite")));
  EXPECT_FALSE(fs::exists(fs::path(scratch_) / "model.safetensors"));
  request.overwrite = true;
  EXPECT_OK(engine_->ExportModel(request).status());
  EXPECT_TRUE(fs::exists(fs::path(scratch_) / "model.safetensors"));

  std::ofstream(scratch_ + "/a_file") << "x";
  request.out_dir = scratch_ + "/a_file";
  EXPECT_THAT(engine_->ExportModel(request), StatusIs(absl::StatusCode::kFailedPrecondition));
  request.out_dir = scratch_ + "/no/such/parent";
  EXPECT_THAT(engine_->ExportModel(request), StatusIs(absl::StatusCode::kNotFound));
  request.out_dir = "";
  EXPECT_THAT(engine_->ExportModel(request), StatusIs(absl::StatusCode::kInvalidArgument));
  request.out_dir = scratch_ + "/new";
  request.session_id = "s-0000000000000000";
  EXPECT_THAT(engine_->ExportModel(request), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(fs::exists(scratch_ + "/new"));
}

}  // namespace
}  // namespace romed
