// Helpers shared by the session tests: fabricated edit entries (random
// deltas, a full record) and a SessionStore that fails on demand.
#ifndef ROMED_TESTS_SESSION_SESSION_TEST_UTIL_H_
#define ROMED_TESTS_SESSION_SESSION_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/session/session_store.h"
#include "server/session/session_types.h"

namespace romed::testing {

// A delta with u [m] and lambda [c] drawn from N(0, scale^2), reproducibly
// from `seed`.
inline RankOneDelta RandomDelta(int64_t layer, int64_t m, int64_t c, uint64_t seed,
                                double scale = 1.0, torch::Dtype dtype = torch::kFloat32) {
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  RankOneDelta d;
  d.layer = layer;
  d.u = (torch::randn({m}, gen, torch::kFloat32) * scale).to(dtype);
  d.lambda = (torch::randn({c}, gen, torch::kFloat32) * scale).to(dtype);
  return d;
}

// An entry with one rewrite and a filled-in record per delta.
inline EditEntry MakeEntry(std::vector<RankOneDelta> deltas, const std::string& subject = "Paris") {
  EditEntry entry;
  entry.request.rewrites.push_back({"{} is the capital of", subject, " Rome", " France"});
  entry.request.hyperparameters = {{"v_lr", "0.5"}, {"fact_token", "subject_last"}};
  for (const RankOneDelta& d : deltas) {
    RewriteResultRecord r;
    r.rewrite = entry.request.rewrites.front();
    r.layer = d.layer;
    r.fact_token = "subject_last";
    r.p_new_before = 0.0125f;
    r.p_new_after = 0.97f;
    r.p_true_before = 0.8f;
    r.p_true_after = 0.01f;
    r.delta_u_norm = d.u.norm().item<float>();
    r.delta_lambda_norm = d.lambda.norm().item<float>();
    r.loss_curve = {3.5f, 1.25f, 0.1f};
    r.key_time_s = 0.01;
    r.value_time_s = 1.5;
    r.update_time_s = 0.002;
    r.identity_covariance = true;
    r.target_already_predicted = true;
    r.converged = true;
    r.covariance_source = "identity";
    r.covariance_time_s = 0.003;
    entry.results.push_back(r);
  }
  entry.total_time_s = 1.75;
  entry.deltas = std::move(deltas);
  return entry;
}

// Wraps a store; the Nth write call from now (1-based, counting
// InsertSession, DeleteSession, AppendEdit and RemoveEdits) fails with
// UnavailableError("injected fault") without reaching the wrapped store.
class FaultInjectingStore : public SessionStore {
 public:
  explicit FaultInjectingStore(std::shared_ptr<SessionStore> inner) : inner_(std::move(inner)) {}

  // 0 = never fail.
  void FailNthWrite(int64_t n) {
    writes_ = 0;
    fail_at_ = n;
  }
  int64_t writes() const { return writes_; }

  absl::StatusOr<std::vector<StoredSession>> LoadAll() override { return inner_->LoadAll(); }
  absl::Status InsertSession(const SessionInfo& info) override {
    RETURN_IF_ERROR(MaybeFail("InsertSession"));
    return inner_->InsertSession(info);
  }
  absl::Status DeleteSession(const std::string& id) override {
    RETURN_IF_ERROR(MaybeFail("DeleteSession"));
    return inner_->DeleteSession(id);
  }
  absl::Status AppendEdit(const SessionInfo& info, const EditEntry& entry) override {
    RETURN_IF_ERROR(MaybeFail("AppendEdit"));
    return inner_->AppendEdit(info, entry);
  }
  absl::Status RemoveEdits(const SessionInfo& info, const std::vector<int64_t>& ids) override {
    RETURN_IF_ERROR(MaybeFail("RemoveEdits"));
    return inner_->RemoveEdits(info, ids);
  }

 private:
  absl::Status MaybeFail(const char* what) {
    if (++writes_ == fail_at_) {
      return absl::UnavailableError(absl::StrCat("injected fault in ", what));
    }
    return absl::OkStatus();
  }
  std::shared_ptr<SessionStore> inner_;
  std::atomic<int64_t> writes_{0};
  std::atomic<int64_t> fail_at_{0};
};

// Entries are equal field by field, deltas bit for bit (and in dtype).
inline void ExpectSameEntry(const EditEntry& a, const EditEntry& b) {
  EXPECT_EQ(a.edit_id, b.edit_id);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.total_time_s, b.total_time_s);
  ASSERT_EQ(a.request.rewrites.size(), b.request.rewrites.size());
  for (size_t i = 0; i < a.request.rewrites.size(); ++i) {
    EXPECT_EQ(a.request.rewrites[i].prompt, b.request.rewrites[i].prompt);
    EXPECT_EQ(a.request.rewrites[i].subject, b.request.rewrites[i].subject);
    EXPECT_EQ(a.request.rewrites[i].target_new, b.request.rewrites[i].target_new);
    EXPECT_EQ(a.request.rewrites[i].target_true, b.request.rewrites[i].target_true);
  }
  EXPECT_EQ(a.request.hyperparameters, b.request.hyperparameters);
  ASSERT_EQ(a.results.size(), b.results.size());
  for (size_t i = 0; i < a.results.size(); ++i) {
    const RewriteResultRecord& x = a.results[i];
    const RewriteResultRecord& y = b.results[i];
    EXPECT_EQ(x.rewrite.subject, y.rewrite.subject);
    EXPECT_EQ(x.layer, y.layer);
    EXPECT_EQ(x.fact_token, y.fact_token);
    EXPECT_EQ(x.p_new_before, y.p_new_before);
    EXPECT_EQ(x.p_new_after, y.p_new_after);
    EXPECT_EQ(x.p_true_before, y.p_true_before);
    EXPECT_EQ(x.p_true_after, y.p_true_after);
    EXPECT_EQ(x.delta_u_norm, y.delta_u_norm);
    EXPECT_EQ(x.delta_lambda_norm, y.delta_lambda_norm);
    EXPECT_EQ(x.loss_curve, y.loss_curve);
    EXPECT_EQ(x.key_time_s, y.key_time_s);
    EXPECT_EQ(x.value_time_s, y.value_time_s);
    EXPECT_EQ(x.update_time_s, y.update_time_s);
    EXPECT_EQ(x.identity_covariance, y.identity_covariance);
    EXPECT_EQ(x.target_already_predicted, y.target_already_predicted);
    EXPECT_EQ(x.converged, y.converged);
    EXPECT_EQ(x.covariance_source, y.covariance_source);
    EXPECT_EQ(x.covariance_time_s, y.covariance_time_s);
  }
  ASSERT_EQ(a.deltas.size(), b.deltas.size());
  for (size_t i = 0; i < a.deltas.size(); ++i) {
    EXPECT_EQ(a.deltas[i].layer, b.deltas[i].layer);
    EXPECT_EQ(a.deltas[i].u.scalar_type(), b.deltas[i].u.scalar_type());
    EXPECT_TRUE(torch::equal(a.deltas[i].u.cpu(), b.deltas[i].u.cpu())) << "delta " << i << " u";
    EXPECT_TRUE(torch::equal(a.deltas[i].lambda.cpu(), b.deltas[i].lambda.cpu()))
        << "delta " << i << " lambda";
  }
}

}  // namespace romed::testing

#endif  // ROMED_TESTS_SESSION_SESSION_TEST_UTIL_H_
