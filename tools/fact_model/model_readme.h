// The README.md written next to the fact model: what world it knows, how it
// was trained, what was measured, and how to use it for tracing and editing.
#ifndef ROMED_TOOLS_FACT_MODEL_MODEL_README_H_
#define ROMED_TOOLS_FACT_MODEL_MODEL_README_H_

#include <string>

#include "server/model/gpt2_config.h"
#include "tools/fact_model/fact_model.h"
#include "tools/fact_model/world.h"

namespace romed::fact_model {

// Markdown text. `config` is the trained model's (vocabulary included).
std::string ModelReadme(const FactModelRecipe& recipe, const World& world,
                        const Gpt2Config& config, const FactModelReport& report);

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_MODEL_README_H_
