// What `romectl compare` was asked to do (romectl_compare_args.h fills it,
// romectl_compare.h runs it). Plain data, kept apart so romectl_args.h can
// hold one without including the command's code.
#ifndef ROMED_CLIENT_ROMECTL_COMPARE_TYPES_H_
#define ROMED_CLIENT_ROMECTL_COMPARE_TYPES_H_

#include <string>

#include "romed/v1/model_editor.pb.h"

namespace romed::client {

// Tokens `romectl compare` generates when --max_new_tokens is not given.
inline constexpr int64_t kCompareDefaultNewTokens = 8;

struct CompareInvocation {
  romed::v1::CompareRequest request;
  std::string color = "auto";  // --color: auto (a terminal without NO_COLOR), always, never
};

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_COMPARE_TYPES_H_
