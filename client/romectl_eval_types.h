// What `romectl eval` was asked to do (romectl_eval_args.h fills it,
// romectl_eval.h runs it). Plain data, kept apart so romectl_args.h can hold
// one without including the eval command's code.
#ifndef ROMED_CLIENT_ROMECTL_EVAL_TYPES_H_
#define ROMED_CLIENT_ROMECTL_EVAL_TYPES_H_

#include <cstdint>
#include <string>

#include "client/eval_runner.h"

namespace romed::client {

struct EvalInvocation {
  std::string dataset;     // --dataset: a CounterFact-format JSON file (read locally)
  int64_t n = 0;           // --n: evaluate the first n good records; 0 = all
  EvalOptions options;     // mode, --every, --gen_length, --seed, Edit's site/hyperparameters
  std::string json_path;   // --json=PATH: also write the JSON report here
  std::string csv_path;    // --csv: per-case CSV (sequential: also <stem>.checkpoints.csv)
  std::string svg_path;    // --svg: the sequential plot
  bool progress = true;    // --progress: a progress bar on stderr
};

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_EVAL_TYPES_H_
