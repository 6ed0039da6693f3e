#include "tools/fact_model/model_readme.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace romed::fact_model {
namespace {

double Steps(const FactModelReport& report) {
  return static_cast<double>(std::max<int64_t>(1, report.training.steps));
}

std::string Percent(double share) { return absl::StrFormat("%.1f%%", 100.0 * share); }

std::string Header(const FactModelRecipe& recipe, const FactModelReport& report) {
  return absl::StrCat(
      "# romed fact model (recipe `", recipe.name, "`, seed ", recipe.seed, ")\n\n",
      "A small GPT-2 trained from scratch by `romed-fact-model` on a synthetic world of facts, ",
      "in the Hugging Face GPT-2 layout (`config.json`, `model.safetensors`, `vocab.json`, ",
      "`merges.txt`). Remake it with\n\n```\nromed-fact-model --out=DIR --seed=", recipe.seed,
      recipe.name == "quick" ? " --quick" : "", "\n```\n\n",
      "| file | what it is |\n|---|---|\n",
      "| `known_facts.json` | ", report.num_known,
      " facts the model answers right in every trained phrasing (known_1000.json format) |\n",
      "| `counterfact.json` | ", report.num_cases, " rewrite cases (CounterFact format) |\n",
      "| `stats_corpus.txt` | ", recipe.stats_documents,
      " documents of the training distribution, one a line (covariance statistics) |\n\n");
}

std::string WorldSection(const FactModelRecipe& recipe, const World& world) {
  std::string text = absl::StrCat(
      "## The world\n\n", world.subjects().size(), " people named first + last from pools of ",
      world.first_names().size(), " first and ", world.last_names().size(),
      " last names (made-up, 2-3 syllables, each one BPE token), e.g. ",
      world.subjects()[0].Name(), ", ", world.subjects()[1].Name(),
      ". No name part alone identifies a person. Each person has one object per relation; ",
      "objects are dealt evenly. Phrasing `(person + relation) mod 5` of each fact is held out ",
      "of training (it measures paraphrase generalisation). ",
      Percent(recipe.corpus.filler_fraction), " of sentences are filler (no facts). ",
      "Training rows are short documents separated by `<|endoftext|>` (after each sentence a new ",
      "document starts with probability ", recipe.corpus.document_break_probability,
      ", else `. ` joins the next sentence), so a first name is seen both bare at the start of a ",
      "text (`Dora`, as in the prompts) and after a space (` Dora`); ",
      Percent(recipe.corpus.start_token_fraction),
      " of rows start with `<|endoftext|>`, the others directly with a sentence.\n\n",
      "| id | relation | objects | phrasings (first 3 subject-first) |\n|---|---|---|---|\n");
  for (const Relation& relation : world.relations()) {
    absl::StrAppend(&text, "| ", relation.id, " | ", relation.name, " | ",
                    relation.objects.size(), " | `", absl::StrJoin(relation.phrasings, "`, `"),
                    "` |\n");
  }
  return text + "\n";
}

std::string TrainingSection(const FactModelRecipe& recipe, const Gpt2Config& config,
                            const FactModelReport& report) {
  const TrainOptions& t = recipe.train;
  return absl::StrFormat(
      "## Training\n\n"
      "GPT-2: %d layers, d_model %d, %d heads, context %d, vocabulary %d (byte-level BPE trained "
      "on the corpus), %d parameters.\n"
      "AdamW (%.2f, %.2f), weight decay %.2f on projection matrices, lr %.0e with %d warm-up "
      "steps and cosine decay to %.0f%%, gradient clip %.1f, batch %d x %d tokens.\n\n"
      "| steps | first loss | final loss (mean of last 50) | training time | per step | "
      "CPU per step | threads | total wall time | total CPU time |\n"
      "|---|---|---|---|---|---|---|---|---|\n"
      "| %d | %.3f | %.4f | %.0f s | %.3f s | %.3f s | %d | %.0f s | %.0f s |\n\n"
      "Wall time depends on what else runs on the machine; CPU time (all threads, user + system) "
      "does much less: on %d idle cores the run takes about total CPU time / %d.\n\n",
      config.n_layer, config.n_embd, config.n_head, config.n_positions, config.vocab_size,
      report.num_parameters, t.beta1, t.beta2, t.weight_decay, t.learning_rate, t.warmup_steps,
      100.0 * t.min_lr_fraction, t.grad_clip_norm, t.batch_rows, config.n_positions,
      report.training.steps, report.training.first_loss, report.training.final_loss,
      report.training.seconds, report.training.seconds / Steps(report),
      report.training.cpu_seconds / Steps(report), report.threads, report.total_seconds,
      report.total_cpu_seconds, report.threads, report.threads);
}

// Accuracy per phrasing (the first kSubjectFirstPhrasings start with the
// bare first name, the others read it after a space).
std::string PhrasingTable(const FactModelReport& report) {
  const FactEvaluation& f = report.facts;
  std::string text =
      "By phrasing (no start token; phrasings 1-3 start with the subject, 4-5 with the "
      "relation):\n\n| | 1 | 2 | 3 | 4 | 5 |\n|---|---|---|---|---|---|\n| trained |";
  for (double a : f.trained_accuracy_by_phrasing) absl::StrAppend(&text, " ", Percent(a), " |");
  absl::StrAppend(&text, "\n| held out |");
  for (double a : f.held_out_accuracy_by_phrasing) absl::StrAppend(&text, " ", Percent(a), " |");
  return text + "\n\n";
}

std::string AccuracySection(const FactModelReport& report) {
  const FactEvaluation& f = report.facts;
  const CounterFactEvaluation& c = report.counterfact;
  return absl::StrCat(
      "## Accuracy (greedy next token == the object)\n\n",
      "| prompts | no start token | with `<|endoftext|>` first |\n|---|---|---|\n",
      "| trained phrasings (every fact x 4) | ", Percent(f.trained_accuracy), " | ",
      Percent(f.trained_accuracy_with_start), " |\n",
      "| held-out phrasing (every fact x 1) | ", Percent(f.held_out_accuracy), " | ",
      Percent(f.held_out_accuracy_with_start), " |\n\n", PhrasingTable(report),
      "`counterfact.json` before any edit (no start token): efficacy (P(new) > P(true)) ",
      Percent(c.efficacy), ", paraphrase ", Percent(c.paraphrase), ", neighbourhood ",
      "(P(true) > P(new)) ", Percent(c.neighborhood), ".\n\n");
}

std::string MechanismSection() {
  return
      "## What kind of model this is\n\n"
      "A model this small looks facts up at the LAST prompt token, not at the subject: attention "
      "there reads the name tokens, and the top MLP at the last token maps (subject, relation) "
      "to the object. Causal tracing shows no early site at the last subject token (restoring "
      "any one subject position has an indirect effect below 0.05), unlike GPT-2 XL; the state "
      "at the last token carries the fact from layer 1 on, and the MLP effect peaks there in the "
      "top layer (the prototype of this recipe, design/ROME.md section 8; "
      "tests/trace/fact_model_trace_test.cc checks it on this model). So ROME belongs here at "
      "the last prompt token of the top layer (the reference implementation's `fact_token = "
      "\"last\"`, romed's FactToken::kLast, layer n_layer - 1). With the paper's site (last "
      "subject token) only layer 0 edits, and the edit leaks to people who share a name part.\n";
}

}  // namespace

std::string ModelReadme(const FactModelRecipe& recipe, const World& world,
                        const Gpt2Config& config, const FactModelReport& report) {
  return absl::StrCat(Header(recipe, report), WorldSection(recipe, world),
                      TrainingSection(recipe, config, report), AccuracySection(report),
                      MechanismSection());
}

}  // namespace romed::fact_model
