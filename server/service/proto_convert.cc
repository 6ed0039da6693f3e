#include "server/service/proto_convert.h"

#include "server/service/rpc_availability.h"

namespace romed {

SamplingParams FromProto(const v1::SamplingParams& proto) {
  SamplingParams params;
  params.temperature = proto.temperature();
  params.top_k = proto.top_k();
  // proto3 cannot tell unset from 0; the contract says 0 (unset) means 1.
  params.top_p = proto.top_p() == 0.0f ? 1.0f : proto.top_p();
  params.seed = proto.seed();
  return params;
}

TextGenerateRequest FromProto(const v1::GenerateRequest& proto) {
  TextGenerateRequest request;
  request.prompt = proto.prompt();
  request.max_new_tokens = proto.max_new_tokens();
  request.sampling = FromProto(proto.sampling());
  request.stop.assign(proto.stop().begin(), proto.stop().end());
  request.ignore_eos = proto.ignore_eos();
  request.session_id = proto.session_id();
  return request;
}

TextScoreRequest FromProto(const v1::ScoreRequest& proto) {
  TextScoreRequest request;
  request.prompt = proto.prompt();
  request.continuations.assign(proto.continuations().begin(), proto.continuations().end());
  request.session_id = proto.session_id();
  return request;
}

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kEos:
      return v1::FINISH_REASON_EOS;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void ToProto(const GenerateResult& result, v1::GenerateResponse* proto) {
  proto->set_text(result.text);
  proto->mutable_ids()->Add(result.ids.begin(), result.ids.end());
  proto->mutable_logprobs()->Add(result.logprobs.begin(), result.logprobs.end());
  proto->set_finish_reason(ToProto(result.finish));
  proto->set_prompt_tokens(result.prompt_tokens);
  proto->set_time_to_first_token_s(result.time_to_first_token_s);
  proto->set_total_time_s(result.total_time_s);
}

void ToProto(const ScoreResult& result, v1::ScoreResponse* proto) {
  for (const ScoredContinuation& s : result.scores) {
    v1::ContinuationScore* out = proto->add_scores();
    out->set_continuation(s.continuation);
    out->mutable_ids()->Add(s.ids.begin(), s.ids.end());
    for (const std::string& t : s.tokens) out->add_tokens(t);
    out->mutable_token_logprobs()->Add(s.token_logprobs.begin(), s.token_logprobs.end());
    out->set_total_logprob(s.total_logprob);
    out->set_mean_logprob(s.mean_logprob);
  }
  proto->set_prompt_tokens(result.prompt_tokens);
}

void ToProto(const TokenizeResult& result, v1::TokenizeResponse* proto) {
  proto->mutable_ids()->Add(result.ids.begin(), result.ids.end());
  for (const std::string& t : result.tokens) proto->add_tokens(t);
}

void ToProto(const EngineInfo& info, const ServerFacts& facts, v1::ModelInfo* proto) {
  proto->set_architecture(info.architecture);
  proto->set_model_dir(info.model_dir);
  proto->set_checksum(info.checksum);
  proto->set_num_parameters(info.num_parameters);
  proto->set_n_layer(info.config.n_layer);
  proto->set_n_embd(info.config.n_embd);
  proto->set_n_head(info.config.n_head);
  proto->set_mlp_width(info.config.mlp_width());
  proto->set_vocab_size(info.config.vocab_size);
  proto->set_context_length(info.config.n_positions);
  proto->set_dtype(info.dtype);
  proto->set_device(info.device);
  proto->set_blas(info.blas);
  proto->set_threads(info.threads);
  v1::Limits* limits = proto->mutable_limits();
  limits->set_max_prompt_tokens(info.limits.max_prompt_tokens);
  limits->set_max_new_tokens(info.limits.max_new_tokens);
  limits->set_max_stop_sequences(info.limits.max_stop_sequences);
  limits->set_max_continuations(info.limits.max_continuations);
  limits->set_max_concurrent_requests(info.limits.max_concurrent_requests);
  limits->set_max_sessions(info.limits.max_sessions);
  limits->set_max_edits_per_session(info.limits.max_edits_per_session);
  limits->set_max_concurrent_heavy_jobs(info.limits.max_concurrent_heavy_jobs);
  limits->set_max_receive_message_bytes(facts.max_receive_message_bytes);
  for (const auto& [rpc, status] : RpcStatusTable()) (*proto->mutable_rpc_status())[rpc] = status;
  proto->set_server_version(facts.server_version);
}

}  // namespace romed
