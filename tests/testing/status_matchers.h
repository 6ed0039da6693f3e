// GoogleTest matchers for absl::Status / absl::StatusOr, named like the
// upstream ones (absl/status/status_matchers.h) that Debian's abseil lacks.
//
//   EXPECT_THAT(LoadConfig("x"), IsOk());
//   EXPECT_THAT(LoadConfig("missing"), StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab")));
#ifndef ROMED_TESTS_TESTING_STATUS_MATCHERS_H_
#define ROMED_TESTS_TESTING_STATUS_MATCHERS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/core/status_macros.h"

namespace romed::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()),
                                       result_listener);
}

}  // namespace romed::testing

#define ASSERT_OK(expr) ASSERT_THAT(expr, ::romed::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT(expr, ::romed::testing::IsOk())
// Asserts a StatusOr is OK and assigns its value to `lhs`.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                   \
  ASSERT_OK_AND_ASSIGN_IMPL_(ROMED_STATUS_CONCAT_(romed_sor_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(sor, lhs, rexpr) \
  auto sor = (rexpr);                               \
  ASSERT_OK(sor.status());                          \
  lhs = std::move(sor).value()

#endif  // ROMED_TESTS_TESTING_STATUS_MATCHERS_H_
