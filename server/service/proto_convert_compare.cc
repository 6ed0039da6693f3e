#include "server/service/proto_convert_compare.h"

#include "server/service/proto_convert.h"

namespace romed {
namespace {

void ToProto(const ScoredContinuation& s, v1::ContinuationScore* out) {
  out->set_continuation(s.continuation);
  out->mutable_ids()->Add(s.ids.begin(), s.ids.end());
  for (const std::string& t : s.tokens) out->add_tokens(t);
  out->mutable_token_logprobs()->Add(s.token_logprobs.begin(), s.token_logprobs.end());
  out->set_total_logprob(s.total_logprob);
  out->set_mean_logprob(s.mean_logprob);
}

void ToProto(const NextTokenProb& t, v1::NextToken* out) {
  out->set_id(t.id);
  out->set_token(t.token);
  out->set_prob(t.prob);
}

// The fields of one side, whichever variant it is.
struct SideFields {
  std::string* generation;
  google::protobuf::RepeatedField<int64_t>* ids;
  google::protobuf::RepeatedField<float>* logprobs;
  google::protobuf::RepeatedPtrField<v1::ContinuationScore>* targets;
  google::protobuf::RepeatedPtrField<v1::NextToken>* top;
  void (v1::CompareRow::*set_finish)(v1::FinishReason);
};

void FillSide(const CompareSide& side, const SideFields& fields, v1::CompareRow* row) {
  if (side.generation.has_value()) {
    *fields.generation = side.generation->text;
    fields.ids->Add(side.generation->ids.begin(), side.generation->ids.end());
    fields.logprobs->Add(side.generation->logprobs.begin(), side.generation->logprobs.end());
    (row->*fields.set_finish)(ToProto(side.generation->finish));
  }
  for (const ScoredContinuation& s : side.targets) ToProto(s, fields.targets->Add());
  for (const NextTokenProb& t : side.top) ToProto(t, fields.top->Add());
}

}  // namespace

TextCompareRequest FromProto(const v1::CompareRequest& proto) {
  TextCompareRequest request;
  request.session_a = proto.a().session_id();
  request.session_b = proto.b().session_id();
  request.prompts.assign(proto.prompts().begin(), proto.prompts().end());
  request.max_new_tokens = proto.max_new_tokens();
  request.sampling = FromProto(proto.sampling());
  request.stop.assign(proto.stop().begin(), proto.stop().end());
  request.ignore_eos = proto.ignore_eos();
  request.targets.assign(proto.targets().begin(), proto.targets().end());
  request.top_k = proto.top_k_next();
  request.kl = proto.kl();
  return request;
}

void ToProto(const TextCompareRequest& request, const CompareResult& result,
             v1::CompareResponse* proto) {
  for (const CompareRowResult& r : result.rows) {
    v1::CompareRow* row = proto->add_rows();
    row->set_prompt(r.prompt);
    row->set_prompt_tokens(r.prompt_tokens);
    FillSide(r.a,
             {row->mutable_generation_a(), row->mutable_generation_a_ids(),
              row->mutable_generation_a_logprobs(), row->mutable_targets_a(),
              row->mutable_top_a(), &v1::CompareRow::set_finish_a},
             row);
    FillSide(r.b,
             {row->mutable_generation_b(), row->mutable_generation_b_ids(),
              row->mutable_generation_b_logprobs(), row->mutable_targets_b(),
              row->mutable_top_b(), &v1::CompareRow::set_finish_b},
             row);
    if (r.kl.has_value()) row->set_kl(static_cast<float>(*r.kl));
  }
  proto->set_session_a(request.session_a);
  proto->set_session_b(request.session_b);
  proto->set_deltas_a(result.deltas_a);
  proto->set_deltas_b(result.deltas_b);
  proto->set_generation_rows(result.generation_rows);
  proto->set_scoring_rows(result.scoring_rows);
  proto->set_total_time_s(result.total_time_s);
}

}  // namespace romed
