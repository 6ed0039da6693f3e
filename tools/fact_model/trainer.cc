#include "tools/fact_model/trainer.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "server/core/torch_guard.h"
#include "server/model/gpt2_model.h"

namespace romed::fact_model {
namespace {

constexpr double kPi = 3.14159265358979323846;

absl::Status ValidateOptions(const Gpt2Config& config, const RowSampler& sampler,
                             const TrainOptions& options) {
  if (options.steps <= 0 || options.batch_rows <= 0 || options.learning_rate <= 0) {
    return absl::InvalidArgumentError("train: steps, batch_rows and learning_rate must be positive");
  }
  if (options.warmup_steps < 0 || options.warmup_steps >= options.steps) {
    return absl::InvalidArgumentError("train: warmup_steps must be in [0, steps)");
  }
  if (sampler.row_tokens() != config.n_positions + 1) {
    return absl::InvalidArgumentError("train: sampler rows must hold n_positions + 1 tokens");
  }
  return absl::OkStatus();
}

// Decay for the 2-D projection matrices; none for embeddings, LN and biases.
bool TakesWeightDecay(const std::string& name, const torch::Tensor& tensor) {
  return tensor.dim() == 2 && name != "wte.weight" && name != "wpe.weight";
}

std::unique_ptr<torch::optim::AdamW> MakeOptimizer(const Gpt2Config& config,
                                                   const Gpt2Weights& weights,
                                                   const TrainOptions& options) {
  std::vector<torch::Tensor> decayed, undecayed;
  for (auto& [name, tensor] : weights.Named(config)) {
    tensor.set_requires_grad(true);  // shares its TensorImpl with `weights`
    (TakesWeightDecay(name, tensor) ? decayed : undecayed).push_back(tensor);
  }
  auto adamw = [&options](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(options.learning_rate)
            .betas({options.beta1, options.beta2})
            .weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, adamw(options.weight_decay));
  groups.emplace_back(undecayed, adamw(0.0));
  return std::make_unique<torch::optim::AdamW>(std::move(groups));
}

void SetLearningRate(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }
}

// One forward + backward + update on a fresh batch; returns the loss.
double TrainStep(const Gpt2Model& model, torch::optim::AdamW& optimizer,
                 const std::vector<torch::Tensor>& parameters, RowSampler& sampler,
                 const TrainOptions& options) {
  const int64_t rows = options.batch_rows;
  const int64_t length = sampler.row_tokens() - 1;
  std::vector<int64_t> ids = sampler.NextRows(rows);
  torch::Tensor batch = torch::from_blob(ids.data(), {rows, length + 1}, torch::kInt64).clone();
  torch::Tensor logits = model.Forward({batch.slice(1, 0, length), {}});  // [B, T, V]
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      logits.reshape({rows * length, -1}), batch.slice(1, 1, length + 1).reshape({-1}));
  optimizer.zero_grad();
  loss.backward();
  if (options.grad_clip_norm > 0) {
    torch::nn::utils::clip_grad_norm_(parameters, options.grad_clip_norm);
  }
  optimizer.step();
  return loss.item<double>();
}

absl::StatusOr<TrainReport> RunTraining(const Gpt2Config& config, Gpt2Weights& weights,
                                        RowSampler& sampler, const TrainOptions& options,
                                        const TrainProgress& progress) {
  auto optimizer = MakeOptimizer(config, weights, options);
  const std::vector<torch::Tensor> parameters = weights.Parameters();
  const Gpt2Model model(config, weights);
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  auto elapsed = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  TrainReport report;
  std::vector<double> losses;
  double window_sum = 0;
  for (int64_t step = 0; step < options.steps; ++step) {
    SetLearningRate(*optimizer, LearningRateAt(options, step));
    const double loss = TrainStep(model, *optimizer, parameters, sampler, options);
    losses.push_back(loss);
    window_sum += loss;
    if ((step + 1) % options.log_every == 0 || step + 1 == options.steps) {
      const int64_t window = (step % options.log_every) + 1;
      report.loss_curve.emplace_back(step + 1, window_sum / window);
      window_sum = 0;
      if (progress) progress(step + 1, losses.back(), elapsed());
    }
  }
  report.seconds = elapsed();
  report.cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  report.steps = options.steps;
  report.first_loss = losses.front();
  const size_t tail = std::min<size_t>(50, losses.size());
  double tail_sum = 0;
  for (size_t i = losses.size() - tail; i < losses.size(); ++i) tail_sum += losses[i];
  report.final_loss = tail_sum / tail;
  for (const auto& [name, tensor] : weights.Named(config)) tensor.set_requires_grad(false);
  return report;
}

}  // namespace

double LearningRateAt(const TrainOptions& options, int64_t step) {
  if (step < options.warmup_steps) {
    return options.learning_rate * static_cast<double>(step + 1) / options.warmup_steps;
  }
  const double progress = static_cast<double>(step - options.warmup_steps) /
                          std::max<int64_t>(1, options.steps - options.warmup_steps - 1);
  const double cosine = 0.5 * (1.0 + std::cos(kPi * std::min(progress, 1.0)));
  return options.learning_rate * (options.min_lr_fraction + (1.0 - options.min_lr_fraction) * cosine);
}

absl::StatusOr<TrainReport> Train(const Gpt2Config& config, Gpt2Weights& weights,
                                  RowSampler& sampler, const TrainOptions& options,
                                  const TrainProgress& progress) {
  if (absl::Status status = ValidateOptions(config, sampler, options); !status.ok()) return status;
  return GuardTorch("training the fact model",
                    [&] { return RunTraining(config, weights, sampler, options, progress); });
}

}  // namespace romed::fact_model
