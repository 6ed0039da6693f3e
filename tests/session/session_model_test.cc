// Sessions against a real (tiny) GPT-2: a revert restores the outputs bit for
// bit, and a restarted registry produces the same outputs as before.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>

#include "server/model/checkpoint.h"
#include "server/model/gpt2_model.h"
#include "server/session/session_registry.h"
#include "server/session/sqlite_session_store.h"
#include "tests/session/session_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::MakeEntry;
using ::romed::testing::RandomDelta;

class SessionModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = romed::testing::WriteTinyCheckpoint();
    ASSERT_FALSE(dir.empty());
    auto checkpoint = LoadCheckpoint(dir);
    ASSERT_OK(checkpoint.status());
    checksum_ = new std::string(checkpoint->checksum);
    model_ = new Gpt2Model(checkpoint->config, checkpoint->weights);
  }
  static void TearDownTestSuite() {
    delete model_;
    delete checksum_;
  }

  void SetUp() override {
    state_dir_ = romed::testing::MakeTempDir("romed-session-model");
    ASSERT_FALSE(state_dir_.empty());
    Reopen();
  }

  void Reopen() {
    registry_.reset();
    auto store = SqliteSessionStore::OpenInStateDir(state_dir_);
    ASSERT_OK(store.status());
    SessionRegistryOptions options;
    options.model_checksum = *checksum_;
    options.device = model_->device();
    options.dtype = model_->dtype();
    auto registry =
        SessionRegistry::Open(std::shared_ptr<SessionStore>(*std::move(store)), options);
    ASSERT_OK(registry.status());
    registry_ = *std::move(registry);
  }

  // Logits [2, T, V] of two fixed prompts under the session's current stack.
  torch::Tensor Logits(const std::string& id) {
    auto state = registry_->Get(id);
    EXPECT_OK(state.status());
    if (!state.ok()) return torch::Tensor();
    return LogitsOf(**state);
  }
  torch::Tensor LogitsOf(const SessionState& state) {
    torch::NoGradGuard no_grad;
    ForwardInput input;
    input.tokens = torch::tensor(
        {{72, 101, 108, 108, 111, 32, 119, 111}, {84, 104, 101, 32, 99, 97, 112, 105}},
        torch::kInt64);
    RowEdits edits;
    edits.views = {state.view};
    ForwardOptions options;
    options.edits = &edits;
    return model_->Forward(input, options);
  }

  // An edit with deltas at both layers, large enough to move the logits.
  absl::StatusOr<EditEntry> Push(const std::string& id, uint64_t seed) {
    const int64_t m = 4 * model_->config().n_embd;
    const int64_t c = model_->config().n_embd;
    return registry_->PushEdit(id, [&](const SessionState&) -> absl::StatusOr<EditEntry> {
      return MakeEntry({RandomDelta(0, m, c, seed, 0.5), RandomDelta(1, m, c, seed + 1, 0.5)});
    });
  }

  static Gpt2Model* model_;
  static std::string* checksum_;
  std::string state_dir_;
  std::unique_ptr<SessionRegistry> registry_;
};

Gpt2Model* SessionModelTest::model_ = nullptr;
std::string* SessionModelTest::checksum_ = nullptr;

TEST_F(SessionModelTest, RevertRestoresTheOutputsBitForBit) {
  auto session = registry_->Create("exact", {}, "");
  ASSERT_OK(session.status());
  const std::string id = (*session)->info.id;
  const torch::Tensor base = Logits(id);
  ASSERT_OK(Push(id, 10).status());
  const torch::Tensor one = Logits(id);
  ASSERT_OK(Push(id, 20).status());
  ASSERT_OK(Push(id, 30).status());
  const torch::Tensor three = Logits(id);
  EXPECT_FALSE(torch::equal(one, base));
  EXPECT_FALSE(torch::equal(three, one));

  ASSERT_OK(registry_->Revert(id, RevertTarget::Pop(2)).status());
  EXPECT_TRUE(torch::equal(Logits(id), one))
      << "max |diff| " << (Logits(id) - one).abs().max().item<float>();
  ASSERT_OK(registry_->Revert(id, RevertTarget::KeepUpTo(0)).status());
  EXPECT_TRUE(torch::equal(Logits(id), base))
      << "max |diff| " << (Logits(id) - base).abs().max().item<float>();
  // An empty session runs exactly the base model.
  torch::NoGradGuard no_grad;
  ForwardInput input;
  input.tokens =
      torch::tensor({{72, 101, 108, 108, 111, 32, 119, 111}, {84, 104, 101, 32, 99, 97, 112, 105}},
                    torch::kInt64);
  EXPECT_TRUE(torch::equal(model_->Forward(input), base));
}

TEST_F(SessionModelTest, RestartedRegistryGivesTheSameOutputs) {
  auto session = registry_->Create("durable", {}, "");
  ASSERT_OK(session.status());
  const std::string id = (*session)->info.id;
  ASSERT_OK(Push(id, 1).status());
  ASSERT_OK(Push(id, 3).status());
  ASSERT_OK(Push(id, 5).status());
  ASSERT_OK(registry_->Revert(id, RevertTarget::Pop(1)).status());
  const torch::Tensor before = Logits(id);

  Reopen();
  EXPECT_TRUE(torch::equal(Logits(id), before))
      << "max |diff| " << (Logits(id) - before).abs().max().item<float>();
  // And a revert after the restart still lands exactly on the earlier outputs.
  auto fresh = registry_->Create("reference", {}, "");
  ASSERT_OK(fresh.status());
  ASSERT_OK(Push((*fresh)->info.id, 1).status());
  ASSERT_OK(registry_->Revert(id, RevertTarget::Pop(1)).status());
  EXPECT_TRUE(torch::equal(Logits(id), Logits((*fresh)->info.id)));
}

TEST_F(SessionModelTest, ASnapshotTakenBeforeAnEditKeepsItsOutputs) {
  auto session = registry_->Create("isolated", {}, "");
  ASSERT_OK(session.status());
  const std::string id = (*session)->info.id;
  ASSERT_OK(Push(id, 7).status());
  auto old = registry_->Get(id);  // a Generate starting now
  ASSERT_OK(old.status());
  const torch::Tensor expected = LogitsOf(**old);
  ASSERT_OK(Push(id, 8).status());
  EXPECT_FALSE(torch::equal(Logits(id), expected));
  EXPECT_TRUE(torch::equal(LogitsOf(**old), expected));  // still the old stack
}

TEST_F(SessionModelTest, TwoSessionsNeverSeeEachOthersEdits) {
  auto a = registry_->Create("a", {}, "");
  auto b = registry_->Create("b", {}, "");
  ASSERT_OK(a.status());
  ASSERT_OK(b.status());
  const torch::Tensor base = Logits((*b)->info.id);
  ASSERT_OK(Push((*a)->info.id, 40).status());
  EXPECT_TRUE(torch::equal(Logits((*b)->info.id), base));
  EXPECT_FALSE(torch::equal(Logits((*a)->info.id), base));
}

}  // namespace
}  // namespace romed
