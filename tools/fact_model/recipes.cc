// The two recipes of fact_model.h.
#include "tools/fact_model/fact_model.h"

namespace romed::fact_model {
namespace {

Gpt2Config Shape(int64_t layers, int64_t width, int64_t heads, int64_t context) {
  Gpt2Config shape;
  shape.n_layer = layers;
  shape.n_embd = width;
  shape.n_head = heads;
  shape.n_positions = context;
  return shape;
}

}  // namespace

FactModelRecipe FullRecipe(uint64_t seed) {
  FactModelRecipe recipe;
  recipe.name = "full";
  recipe.seed = seed;
  recipe.shape = Shape(/*layers=*/4, /*width=*/128, /*heads=*/4, /*context=*/64);
  return recipe;  // the defaults of every options struct are the full recipe
}

FactModelRecipe QuickRecipe(uint64_t seed) {
  FactModelRecipe recipe;
  recipe.name = "quick";
  recipe.seed = seed;
  recipe.world.num_subjects = 60;
  recipe.world.num_first_names = 12;
  recipe.world.num_last_names = 12;
  recipe.world.objects_per_relation = 5;  // 12 people per object: 10 neighbours each
  recipe.corpus.filler_pool_size = 500;
  recipe.shape = Shape(/*layers=*/2, /*width=*/64, /*heads=*/4, /*context=*/64);
  recipe.bpe_vocab_size = 768;
  recipe.bpe_documents = 500;
  recipe.stats_documents = 300;
  recipe.train.steps = 200;
  recipe.train.batch_rows = 32;
  recipe.train.warmup_steps = 20;
  recipe.train.log_every = 50;
  recipe.counterfact.num_cases = 100;
  return recipe;
}

}  // namespace romed::fact_model
