#include "server/service/proto_convert_session.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace romed {
namespace {

double UnixSeconds(absl::Time time) { return absl::ToDoubleSeconds(time - absl::UnixEpoch()); }

absl::StatusOr<std::optional<FactToken>> FactTokenFromProto(v1::FactToken token) {
  switch (token) {
    case v1::FACT_TOKEN_UNSPECIFIED:
      return std::optional<FactToken>();
    case v1::FACT_TOKEN_SUBJECT_LAST:
      return std::optional<FactToken>(FactToken::kSubjectLast);
    case v1::FACT_TOKEN_SUBJECT_FIRST:
      return std::optional<FactToken>(FactToken::kSubjectFirst);
    case v1::FACT_TOKEN_LAST:
      return std::optional<FactToken>(FactToken::kLast);
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("hparams.fact_token has the unknown value ", static_cast<int>(token),
                   " (expected FACT_TOKEN_SUBJECT_LAST, FACT_TOKEN_SUBJECT_FIRST or "
                   "FACT_TOKEN_LAST, or unset for the model's recommended site)"));
}

RomeOverrides OverridesFromProto(const v1::RomeHyperparameters& h) {
  RomeOverrides o;
  if (h.has_layer()) o.layer = h.layer();
  if (h.has_v_num_grad_steps()) o.v_num_grad_steps = h.v_num_grad_steps();
  if (h.has_v_lr()) o.v_lr = h.v_lr();
  if (h.has_v_weight_decay()) o.v_weight_decay = h.v_weight_decay();
  if (h.has_kl_factor()) o.kl_factor = h.kl_factor();
  if (h.has_clamp_norm_factor()) o.clamp_norm_factor = h.clamp_norm_factor();
  if (h.original_key_form()) o.key_form = UpdateKeyForm::kReleasedCode;
  o.identity_covariance = h.identity_covariance();
  return o;
}

// "subject_last" -> FACT_TOKEN_SUBJECT_LAST (as stored by RewriteResultRecord).
v1::FactToken StoredFactToken(const std::string& name) {
  if (name == "subject_last") return v1::FACT_TOKEN_SUBJECT_LAST;
  if (name == "subject_first") return v1::FACT_TOKEN_SUBJECT_FIRST;
  if (name == "last") return v1::FACT_TOKEN_LAST;
  return v1::FACT_TOKEN_UNSPECIFIED;
}

void ToProto(const RewriteRecord& r, v1::Rewrite* proto) {
  proto->set_prompt(r.prompt);
  proto->set_subject(r.subject);
  proto->set_target_new(r.target_new);
  proto->set_target_true(r.target_true);
}

void ToProto(const RewriteResultRecord& r, v1::RewriteResult* proto) {
  ToProto(r.rewrite, proto->mutable_rewrite());
  proto->set_layer(static_cast<int32_t>(r.layer));
  proto->set_fact_token(StoredFactToken(r.fact_token));
  proto->set_p_new_before(r.p_new_before);
  proto->set_p_new_after(r.p_new_after);
  proto->set_p_true_before(r.p_true_before);
  proto->set_p_true_after(r.p_true_after);
  proto->set_delta_u_norm(r.delta_u_norm);
  proto->set_delta_lambda_norm(r.delta_lambda_norm);
  proto->mutable_loss_curve()->Add(r.loss_curve.begin(), r.loss_curve.end());
  proto->set_key_time_s(r.key_time_s);
  proto->set_value_time_s(r.value_time_s);
  proto->set_update_time_s(r.update_time_s);
  proto->set_identity_covariance(r.identity_covariance);
  proto->set_target_already_predicted(r.target_already_predicted);
  proto->set_covariance_source(r.covariance_source);
  proto->set_covariance_time_s(r.covariance_time_s);
  proto->set_converged(r.converged);
}

}  // namespace

CreateSessionRequest FromProto(const v1::CreateSessionRequest& proto) {
  CreateSessionRequest request;
  request.name = proto.name();
  request.labels.insert(proto.labels().begin(), proto.labels().end());
  return request;
}

void ToProto(const SessionState& state, v1::Session* proto) {
  proto->set_id(state.info.id);
  proto->set_name(state.info.name);
  proto->mutable_labels()->insert(state.info.labels.begin(), state.info.labels.end());
  proto->set_owner(state.info.owner);
  proto->set_created_unix_s(UnixSeconds(state.info.created));
  proto->set_updated_unix_s(UnixSeconds(state.info.updated));
  proto->set_num_edits(state.num_edits());
  proto->set_last_edit_id(state.last_edit_id());
}

absl::StatusOr<TextEditRequest> FromProto(const v1::EditRequest& proto) {
  TextEditRequest request;
  request.session_id = proto.session_id();
  for (const v1::Rewrite& r : proto.rewrites()) {
    request.rewrites.push_back(RewriteRecord{r.prompt(), r.subject(), r.target_new(),
                                             r.target_true()});
  }
  request.overrides = OverridesFromProto(proto.hparams());
  absl::StatusOr<std::optional<FactToken>> token = FactTokenFromProto(proto.hparams().fact_token());
  if (!token.ok()) return token.status();
  request.overrides.fact_token = *token;
  return request;
}

void ToProto(const EditEntry& entry, v1::EditRecord* proto) {
  proto->set_edit_id(entry.edit_id);
  for (const RewriteResultRecord& r : entry.results) ToProto(r, proto->add_rewrites());
  proto->set_created_unix_s(UnixSeconds(entry.created));
  proto->set_total_time_s(entry.total_time_s);
  proto->mutable_hyperparameters()->insert(entry.request.hyperparameters.begin(),
                                           entry.request.hyperparameters.end());
}

absl::StatusOr<RevertTarget> RevertTargetFromProto(const v1::RevertRequest& proto) {
  switch (proto.target_case()) {
    case v1::RevertRequest::kPop:
      return RevertTarget::Pop(proto.pop());
    case v1::RevertRequest::kKeepUpToId:
      return RevertTarget::KeepUpTo(proto.keep_up_to_id());
    case v1::RevertRequest::TARGET_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "say what to revert: set pop (remove the last N edits) or keep_up_to_id (remove every "
      "edit after that id; 0 removes all)");
}

ComputeStatsRequest FromProto(const v1::ComputeStatsRequest& proto) {
  ComputeStatsRequest request;
  request.layer = proto.layer();
  request.corpus_path = proto.corpus_path();
  request.max_tokens = proto.max_tokens();
  request.recompute = proto.recompute();
  return request;
}

void ToProto(const CovarianceProgress& progress, v1::ComputeStatsProgress* proto) {
  proto->set_layer(static_cast<int32_t>(progress.layer));
  proto->set_tokens_done(progress.tokens_done);
  proto->set_tokens_total(progress.tokens_total);
  proto->set_eta_s(progress.eta_s);
  proto->set_elapsed_s(progress.elapsed_s);
}

void ToProto(const ComputeStatsResult& result, v1::ComputeStatsProgress* proto) {
  proto->set_layer(static_cast<int32_t>(result.layer));
  proto->set_tokens_done(result.token_count);
  proto->set_tokens_total(result.token_count);
  proto->set_eta_s(0.0);
  proto->set_done(true);
  proto->set_cached(result.cached);
  proto->set_cache_key(result.cache_path);
  proto->set_elapsed_s(result.elapsed_s);
  proto->set_corpus_path(result.corpus_path);
  proto->set_source(result.source);
}

}  // namespace romed
