// romectl: how command lines parse, how replies print, and whole runs of the
// program (RomectlMain) against a FakeModelEditor on a loopback port.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "client/romectl_args.h"
#include "client/romectl_commands.h"
#include "client/romectl_format.h"
#include "tests/client/fake_model_editor.h"
#include "tests/testing/status_matchers.h"

namespace romed::client {
namespace {

using ::romed::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ParseTest : public ::testing::Test {
 protected:
  absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "romectl");
    return ParseInvocation(args);
  }
};

TEST_F(ParseTest, NoCommandAsksForUsage) {
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({}));
  EXPECT_EQ(inv.command, Command::kHelp);
  EXPECT_TRUE(inv.missing_command);
}

TEST_F(ParseTest, HelpCommandAndHelpFlagAreNotErrors) {
  ASSERT_OK_AND_ASSIGN(Invocation command, Parse({"help"}));
  EXPECT_EQ(command.command, Command::kHelp);
  EXPECT_FALSE(command.missing_command);
  ASSERT_OK_AND_ASSIGN(Invocation flag, Parse({"generate", "--help"}));
  EXPECT_EQ(flag.command, Command::kHelp);
  EXPECT_FALSE(flag.missing_command);
}

TEST_F(ParseTest, DefaultsAreLocalServerTextOutputAndSixtySeconds) {
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({"info"}));
  EXPECT_EQ(inv.command, Command::kInfo);
  EXPECT_EQ(inv.server, "127.0.0.1:50051");
  EXPECT_FALSE(inv.json);
  EXPECT_EQ(inv.timeout, absl::Seconds(60));
}

TEST_F(ParseTest, GlobalFlagsMayComeBeforeOrAfterTheCommand) {
  ASSERT_OK_AND_ASSIGN(Invocation inv,
                       Parse({"--server=127.0.0.1:9", "health", "--json", "--timeout_s=2.5"}));
  EXPECT_EQ(inv.command, Command::kHealth);
  EXPECT_EQ(inv.server, "127.0.0.1:9");
  EXPECT_TRUE(inv.json);
  EXPECT_EQ(inv.timeout, absl::Milliseconds(2500));
}

TEST_F(ParseTest, GenerateFlagsFillTheRequest) {
  ASSERT_OK_AND_ASSIGN(
      Invocation inv,
      Parse({"generate", "--prompt=The Eiffel Tower is in", "--max_new_tokens=5",
             "--temperature=0.7", "--top_k=40", "--top_p=0.9", "--seed=18446744073709551615",
             "--session=s-1", "--ignore_eos", "--stream"}));
  const romed::v1::GenerateRequest& g = inv.generate;
  EXPECT_EQ(g.prompt(), "The Eiffel Tower is in");
  EXPECT_EQ(g.max_new_tokens(), 5);
  EXPECT_FLOAT_EQ(g.sampling().temperature(), 0.7f);
  EXPECT_EQ(g.sampling().top_k(), 40);
  EXPECT_FLOAT_EQ(g.sampling().top_p(), 0.9f);
  EXPECT_EQ(g.sampling().seed(), 18446744073709551615ull);
  EXPECT_EQ(g.session_id(), "s-1");
  EXPECT_TRUE(g.ignore_eos());
  EXPECT_TRUE(inv.stream);
}

TEST_F(ParseTest, RepeatedStopKeepsEveryOccurrenceInOrderWithCommas) {
  ASSERT_OK_AND_ASSIGN(Invocation inv,
                       Parse({"generate", "--prompt=x", "--stop=.", "--stop", "a, b", "--stop="}));
  EXPECT_THAT(inv.generate.stop(), ElementsAre(".", "a, b", ""));
}

TEST_F(ParseTest, EachParseStartsFromTheDefaults) {
  ASSERT_OK(Parse({"--json", "generate", "--prompt=x", "--stop=a"}).status());
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({"generate"}));
  EXPECT_FALSE(inv.json);
  EXPECT_EQ(inv.generate.prompt(), "");
  EXPECT_THAT(inv.generate.stop(), ::testing::IsEmpty());
}

TEST_F(ParseTest, RepeatedContinuationKeepsCommasAndEqualsSigns) {
  ASSERT_OK_AND_ASSIGN(Invocation inv,
                       Parse({"score", "--prompt=Paris is in", "--continuation= France, Europe",
                              "--continuation= x=y"}));
  EXPECT_EQ(inv.score.prompt(), "Paris is in");
  EXPECT_THAT(inv.score.continuations(), ElementsAre(" France, Europe", " x=y"));
}

TEST_F(ParseTest, ValueMayBeTheNextArgumentEvenIfItLooksLikeAFlag) {
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({"tokenize", "--text", "--json"}));
  EXPECT_EQ(inv.text, "--json");
  EXPECT_FALSE(inv.json);
}

TEST_F(ParseTest, BooleanFlagsTakeExplicitValuesAndTheNoPrefix) {
  ASSERT_OK_AND_ASSIGN(Invocation off, Parse({"info", "--json=false"}));
  EXPECT_FALSE(off.json);
  ASSERT_OK_AND_ASSIGN(Invocation negated, Parse({"generate", "--prompt=x", "--nostream"}));
  EXPECT_FALSE(negated.stream);
}

TEST_F(ParseTest, SingleDashFlagsWork) {
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({"-json", "info"}));
  EXPECT_TRUE(inv.json);
}

TEST_F(ParseTest, UnknownCommandIsAUsageError) {
  EXPECT_THAT(Parse({"edit"}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("edit")));
}

TEST_F(ParseTest, UnknownFlagIsAUsageError) {
  EXPECT_THAT(Parse({"info", "--model=x"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--model")));
}

TEST_F(ParseTest, FlagOfAnotherCommandIsAUsageError) {
  EXPECT_THAT(Parse({"generate", "--prompt=x", "--continuation=y"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--continuation")));
}

TEST_F(ParseTest, NonRepeatableFlagGivenTwiceIsAUsageError) {
  EXPECT_THAT(Parse({"generate", "--prompt=a", "--prompt=b"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more than once")));
}

TEST_F(ParseTest, MalformedValueIsAUsageErrorNamingTheFlag) {
  EXPECT_THAT(Parse({"generate", "--prompt=x", "--top_k=many"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--top_k")));
}

TEST_F(ParseTest, MissingValueAtTheEndIsAUsageError) {
  EXPECT_THAT(Parse({"tokenize", "--text"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a value")));
}

TEST_F(ParseTest, StrayPositionalArgumentIsAUsageError) {
  EXPECT_THAT(Parse({"tokenize", "hello"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hello")));
}

TEST_F(ParseTest, NonPositiveTimeoutIsAUsageError) {
  EXPECT_THAT(Parse({"info", "--timeout_s=0"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--timeout_s")));
}

TEST_F(ParseTest, DoubleDashEndsTheFlags) {
  EXPECT_THAT(Parse({"tokenize", "--", "--text=x"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unexpected argument")));
}

TEST(UsageTest, ListsEveryCommandAndTheRepeatableFlags) {
  const std::string usage = Usage();
  for (const char* command : {"health", "info", "tokenize", "generate", "score", "help"}) {
    EXPECT_THAT(usage, HasSubstr(std::string("  ") + command + " ")) << command;
  }
  EXPECT_THAT(usage, HasSubstr("--continuation=TEXT (repeatable)"));
  EXPECT_THAT(usage, HasSubstr("--stop=TEXT (repeatable)"));
}

TEST(FormatTest, TokenizeJsonIsIdsAndTokens) {
  romed::v1::TokenizeResponse tokens;
  tokens.add_ids(15496);
  tokens.add_ids(995);
  tokens.add_tokens("Hello");
  tokens.add_tokens("\xC4\xA0world");  // "Ġworld"
  EXPECT_EQ(DumpJson(TokenizeToJson(tokens)),
            "{\"ids\":[15496,995],\"tokens\":[\"Hello\",\"\xC4\xA0world\"]}");
}

TEST(FormatTest, GenerateJsonNamesTheFinishReasonAsAWord) {
  const nlohmann::json json = GenerateToJson(romed::testing::FakeGenerateResponse());
  EXPECT_EQ(json["text"], " Paris");
  EXPECT_EQ(json["finish_reason"], "length");
  EXPECT_EQ(json["ids"], nlohmann::json({6342, 271}));
  EXPECT_EQ(json["logprobs"], nlohmann::json({-0.5, -1.5}));
  EXPECT_EQ(json["prompt_tokens"], 0);
}

TEST(FormatTest, ModelInfoJsonKeepsLargeIntegersAsNumbersAndMapsAsObjects) {
  const nlohmann::json json = ModelInfoToJson(romed::testing::FakeModelInfo());
  EXPECT_EQ(json["num_parameters"], 123456789012);
  EXPECT_EQ(json["limits"]["max_new_tokens"], 256);
  EXPECT_EQ(json["rpc_status"]["Generate"], "available");
}

TEST(FormatTest, ScoreJsonHasOneEntryPerContinuation) {
  romed::v1::ScoreResponse response;
  response.set_prompt_tokens(4);
  romed::v1::ContinuationScore* score = response.add_scores();
  score->set_continuation(" Paris");
  score->add_ids(6342);
  score->add_tokens("\xC4\xA0Paris");
  score->add_token_logprobs(-0.25f);
  score->set_total_logprob(-0.25);
  score->set_mean_logprob(-0.25);
  const nlohmann::json json = ScoreToJson(response);
  EXPECT_EQ(json["prompt_tokens"], 4);
  ASSERT_EQ(json["scores"].size(), 1u);
  EXPECT_EQ(json["scores"][0]["continuation"], " Paris");
  EXPECT_EQ(json["scores"][0]["token_logprobs"], nlohmann::json({-0.25}));
  EXPECT_EQ(json["scores"][0]["total_logprob"], -0.25);
}

TEST(FormatTest, InvalidUtf8IsReplacedNotThrown) {
  EXPECT_EQ(DumpJson(nlohmann::json("a\xFF")), "\"a\xEF\xBF\xBD\"");
}

TEST(FormatTest, FinishReasonNamesAreLowerCaseWords) {
  EXPECT_EQ(FinishReasonName(romed::v1::FINISH_REASON_STOP), "stop");
  EXPECT_EQ(FinishReasonName(romed::v1::FINISH_REASON_EOS), "eos");
  EXPECT_EQ(FinishReasonName(romed::v1::FINISH_REASON_UNSPECIFIED), "unspecified");
}

TEST(FormatTest, ErrorNamesTheCanonicalCode) {
  EXPECT_EQ(FormatError(absl::InvalidArgumentError("prompt is empty")),
            "error: INVALID_ARGUMENT: prompt is empty");
}

TEST(FormatTest, TokensPrintOnePerLineWithPositionIdAndQuotedString) {
  romed::v1::TokenizeResponse tokens;
  tokens.add_ids(15496);
  tokens.add_tokens("Hello");
  EXPECT_EQ(FormatTokens(tokens), "   0    15496  \"Hello\"\n1 tokens\n");
}

TEST(FormatTest, ScoresPrintTotalsAndATokenTable) {
  romed::v1::ScoreResponse response;
  response.set_prompt_tokens(4);
  romed::v1::ContinuationScore* score = response.add_scores();
  score->set_continuation(" Paris");
  score->add_ids(6342);
  score->add_tokens("Paris");
  score->add_token_logprobs(-0.25f);
  score->set_total_logprob(-0.25);
  score->set_mean_logprob(-0.25);
  EXPECT_EQ(FormatScores(response),
            "prompt: 4 tokens\n"
            "\n"
            "\" Paris\": total -0.2500, mean -0.2500 over 1 tokens\n"
            "  token         id    logprob\n"
            "  \"Paris\"     6342    -0.2500\n");
}

TEST(FormatTest, ScoreTableAlignsMultiByteTokensByCodePoints) {
  romed::v1::ScoreResponse response;
  romed::v1::ContinuationScore* score = response.add_scores();
  score->set_continuation(" ab");
  for (const char* token : {"\xC4\xA0"
                            "ab",
                            "xyz"}) {  // "Ġab": 4 bytes, 3 columns
    score->add_ids(1);
    score->add_tokens(token);
    score->add_token_logprobs(-1.0f);
  }
  const std::string text = FormatScores(response);
  EXPECT_THAT(text, HasSubstr("  \"\xC4\xA0"
                              "ab\"        1    -1.0000\n"));
  EXPECT_THAT(text, HasSubstr("  \"xyz\"        1    -1.0000\n"));
}

TEST(FormatTest, ModelInfoSummaryNamesShapeLimitsAndUnavailableRpcs) {
  const std::string text = FormatModelInfo(romed::testing::FakeModelInfo());
  EXPECT_THAT(text, HasSubstr("gpt2: 2 layers, d_model 64, 2 heads, MLP width 256"));
  EXPECT_THAT(text, HasSubstr("max_new_tokens=256"));
  EXPECT_THAT(text, HasSubstr("available    Generate"));
  EXPECT_THAT(text, HasSubstr("unavailable  Edit: UNIMPLEMENTED"));
}

// Whole runs of the program, as a shell would make them.
class RomectlMainTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"romectl", "--server=" + server_.target(), "--timeout_s=10"});
    out_.str("");
    err_.str("");
    return RomectlMain(args, out_, err_);
  }
  romed::testing::FakeServer server_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(RomectlMainTest, HealthPrintsServingAndSucceeds) {
  EXPECT_EQ(Run({"health"}), kExitOk);
  EXPECT_EQ(out_.str(), "SERVING\n");
}

TEST_F(RomectlMainTest, HealthNotServingFailsWithExitOne) {
  server_.SetServing(false);
  EXPECT_EQ(Run({"health", "--json"}), kExitRpcError);
  EXPECT_EQ(out_.str(), "{\"status\":\"NOT_SERVING\"}\n");
}

TEST_F(RomectlMainTest, GeneratePrintsTheText) {
  EXPECT_EQ(Run({"generate", "--prompt=x"}), kExitOk);
  EXPECT_EQ(out_.str(), " Paris\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(RomectlMainTest, GenerateStreamPrintsThePiecesThenANewline) {
  EXPECT_EQ(Run({"generate", "--prompt=x", "--stream"}), kExitOk);
  EXPECT_EQ(out_.str(), " Paris\n");
  EXPECT_EQ(server_.editor().last_generate_request().prompt(), "x");
}

TEST_F(RomectlMainTest, JsonOutputIsExactlyOneObject) {
  EXPECT_EQ(Run({"--json", "generate", "--prompt=x", "--stream"}), kExitOk);
  const std::string out = out_.str();
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  const nlohmann::json json = nlohmann::json::parse(out);
  EXPECT_EQ(json["text"], " Paris");
}

TEST_F(RomectlMainTest, TokenizeJsonPrintsIds) {
  EXPECT_EQ(Run({"tokenize", "--text=AB", "--json"}), kExitOk);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["ids"], nlohmann::json({65, 66}));
}

TEST_F(RomectlMainTest, ScoreSendsRepeatedContinuations) {
  EXPECT_EQ(Run({"score", "--prompt=p", "--continuation= a,b", "--continuation= c"}), kExitOk);
  EXPECT_THAT(server_.editor().last_score_request().continuations(), ElementsAre(" a,b", " c"));
  EXPECT_THAT(out_.str(), HasSubstr("\" a,b\": total -4.0000"));
}

TEST_F(RomectlMainTest, ServerErrorPrintsCodeAndMessageAndExitsOne) {
  EXPECT_EQ(Run({"generate", "--prompt="}), kExitRpcError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "error: INVALID_ARGUMENT: prompt is empty\n");
}

TEST_F(RomectlMainTest, UsageErrorExitsTwo) {
  EXPECT_EQ(Run({"generate", "--bogus"}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("error: INVALID_ARGUMENT: unknown flag --bogus"));
}

TEST_F(RomectlMainTest, HelpPrintsUsageAndSucceeds) {
  EXPECT_EQ(Run({"help"}), kExitOk);
  EXPECT_THAT(out_.str(), StartsWith("usage: romectl"));
}

TEST_F(RomectlMainTest, NoCommandPrintsUsageToStderrAndExitsTwo) {
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("usage: romectl"));
}

}  // namespace
}  // namespace romed::client
