// `romectl compare` and RomedClient::Compare: how the flags parse (compare's
// repeatable --prompt / --target next to the single-valued ones of generate
// and edit), the two-column text, --json, colour, and errors, against a fake
// ModelEditor on a loopback port. No model and no libtorch.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/romectl_args.h"
#include "client/romectl_commands.h"
#include "client/romectl_compare.h"
#include "tests/testing/status_matchers.h"

namespace romed::client {
namespace {

using ::romed::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

// Answers Compare with rows derived from the request: a generates " Vienna.
// The", b " Lisbon. The"; target j scores logp -(j+1) under a and -0.5 under
// b; top-k lists of " Vienna" / " Lisbon"; KL 0.75 when asked. The session
// "missing" is NOT_FOUND. Records the request.
class FakeCompareEditor final : public romed::v1::ModelEditor::Service {
 public:
  grpc::Status Compare(grpc::ServerContext*, const romed::v1::CompareRequest* request,
                       romed::v1::CompareResponse* reply) override {
    {
      absl::MutexLock lock(&mu_);
      last_ = *request;
    }
    for (const auto* v : {&request->a(), &request->b()}) {
      if (v->session_id() == "missing") {
        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                            "variant b: session \"missing\" not found");
      }
    }
    reply->set_session_a(request->a().session_id());
    reply->set_session_b(request->b().session_id());
    reply->set_deltas_b(request->b().session_id().empty() ? 0 : 1);
    reply->set_generation_rows(request->max_new_tokens() > 0 ? 2 * request->prompts_size() : 0);
    reply->set_scoring_rows(2 * request->prompts_size() * std::max(1, request->targets_size()));
    reply->set_total_time_s(0.0125);
    for (const std::string& prompt : request->prompts()) {
      romed::v1::CompareRow* row = reply->add_rows();
      row->set_prompt(prompt);
      row->set_prompt_tokens(5);
      if (request->max_new_tokens() > 0) {
        row->set_generation_a(" Vienna. The");
        row->set_generation_b(" Lisbon. The");
        row->set_finish_a(romed::v1::FINISH_REASON_LENGTH);
        row->set_finish_b(romed::v1::FINISH_REASON_LENGTH);
      }
      for (int j = 0; j < request->targets_size(); ++j) {
        romed::v1::ContinuationScore* a = row->add_targets_a();
        a->set_continuation(request->targets(j));
        a->set_total_logprob(-(j + 1.0));
        romed::v1::ContinuationScore* b = row->add_targets_b();
        b->set_continuation(request->targets(j));
        b->set_total_logprob(j == 0 ? -0.5 : -(j + 1.0));
      }
      const char* tops[2][2] = {{"ĠVienna", "ĠLisbon"}, {"ĠLisbon", "ĠVienna"}};
      for (int k = 0; k < request->top_k_next() && k < 2; ++k) {
        romed::v1::NextToken* a = row->add_top_a();
        a->set_id(k == 0 ? 7 : 9);
        a->set_token(tops[0][k]);
        a->set_prob(k == 0 ? 0.5f : 0.25f);
        romed::v1::NextToken* b = row->add_top_b();
        b->set_id(k == 0 ? 9 : 7);
        b->set_token(tops[1][k]);
        b->set_prob(k == 0 ? 0.875f : 0.0625f);
      }
      if (request->kl()) row->set_kl(0.75f);
    }
    return grpc::Status::OK;
  }

  romed::v1::CompareRequest last() const {
    absl::MutexLock lock(&mu_);
    return last_;
  }

 private:
  mutable absl::Mutex mu_;
  romed::v1::CompareRequest last_ ABSL_GUARDED_BY(mu_);
};

class RomectlCompareTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    editor_ = new FakeCompareEditor;
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(editor_);
    server_ = builder.BuildAndStart().release();
    target_ = new std::string(absl::StrCat("127.0.0.1:", port));
  }
  static void TearDownTestSuite() {
    server_->Shutdown();
    delete server_;
    delete editor_;
    delete target_;
  }

  static absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "romectl");
    return ParseInvocation(args);
  }

  // Runs romectl against the fake; returns the exit status.
  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"romectl", "--server=" + *target_});
    out_.str("");
    err_.str("");
    return RomectlMain(args, out_, err_);
  }

  static FakeCompareEditor* editor_;
  static grpc::Server* server_;
  static std::string* target_;
  std::ostringstream out_, err_;
};
FakeCompareEditor* RomectlCompareTest::editor_ = nullptr;
grpc::Server* RomectlCompareTest::server_ = nullptr;
std::string* RomectlCompareTest::target_ = nullptr;

TEST_F(RomectlCompareTest, RepeatedPromptsAndTargetsBecomeOneRequest) {
  ASSERT_OK_AND_ASSIGN(
      Invocation inv,
      Parse({"compare", "--b=s-1", "--prompt=Dora Zope is from", "--prompt", "Paris, France is",
             "--target= Lisbon", "--target= Vienna", "--top_k=3", "--kl", "--seed=4"}));
  EXPECT_EQ(inv.command, Command::kCompare);
  const romed::v1::CompareRequest& r = inv.compare.request;
  EXPECT_EQ(r.a().session_id(), "");
  EXPECT_EQ(r.b().session_id(), "s-1");
  ASSERT_EQ(r.prompts_size(), 2);
  EXPECT_EQ(r.prompts(1), "Paris, France is");  // commas are literal
  ASSERT_EQ(r.targets_size(), 2);
  EXPECT_EQ(r.targets(0), " Lisbon");
  EXPECT_EQ(r.max_new_tokens(), kCompareDefaultNewTokens);
  EXPECT_EQ(r.top_k_next(), 3);
  EXPECT_TRUE(r.kl());
  EXPECT_EQ(r.sampling().seed(), 4u);
  EXPECT_EQ(r.sampling().top_k(), 0);  // --top_k is the shown next tokens here

  ASSERT_OK_AND_ASSIGN(inv, Parse({"compare", "--prompt=x", "--max_new_tokens=0"}));
  EXPECT_EQ(inv.compare.request.max_new_tokens(), 0);
}

TEST_F(RomectlCompareTest, OtherCommandsStillTakeOnePromptAndTarget) {
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({"generate", "--prompt=Hello, world"}));
  EXPECT_EQ(inv.generate.prompt(), "Hello, world");
  EXPECT_THAT(Parse({"generate", "--prompt=a", "--prompt=b"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--prompt given more than once")));
  EXPECT_THAT(Parse({"edit", "--session=s", "--prompt={} is", "--subject=x", "--target=a",
                     "--target=b"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--target given more than once")));
}

TEST_F(RomectlCompareTest, BadCommandLinesAreUsageErrors) {
  EXPECT_THAT(Parse({"compare", "--b=s-1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least one --prompt")));
  EXPECT_THAT(Parse({"compare", "--prompt=x", "--color=pink"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown --color=pink")));
  EXPECT_THAT(Parse({"compare", "--prompt=x", "--session=s"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not take --session")));
  EXPECT_THAT(Parse({"compare", "--prompt=x", "--top_k=99999999999"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_EQ(Run({"compare"}), kExitUsage);
}

TEST_F(RomectlCompareTest, PrintsTwoColumnsAndMarksWhatDiffers) {
  ASSERT_EQ(Run({"compare", "--b=s-1", "--prompt=Dora Zope is from", "--target= Lisbon",
                 "--target= Paris", "--top_k=2", "--kl", "--color=never"}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(editor_->last().targets_size(), 2);
  EXPECT_EQ(out_.str(),
            "a  original model\n"
            "b  session s-1 (1 delta)\n"
            "1 prompt; one batched decode of 2 rows; one scoring forward of 4 rows; 0.013 s\n"
            "\n"
            "[1] \"Dora Zope is from\"  (5 tokens)\n"
            "                  a                       b\n"
            "* generation      \" Vienna. The\"          \" Lisbon. The\"\n"
            "* \" Lisbon\"       p 0.3679  logp -1.0000  p 0.6065  logp -0.5000\n"
            "  \" Paris\"        p 0.1353  logp -2.0000  p 0.1353  logp -2.0000\n"
            "* top 1           \" Vienna\" 0.5000        \" Lisbon\" 0.8750\n"
            "* top 2           \" Lisbon\" 0.2500        \" Vienna\" 0.0625\n"
            "* KL(a||b)        0.75 nats\n");
  EXPECT_THAT(out_.str(), Not(HasSubstr("\x1b[")));
}

TEST_F(RomectlCompareTest, ColourHighlightsTheDifferingParts) {
  ASSERT_EQ(Run({"compare", "--b=s-1", "--prompt=p", "--color=always"}), kExitOk);
  // The generations share the opening quote and space; a's rest in red, b's in green.
  EXPECT_THAT(out_.str(), HasSubstr("\" \x1b[31mVienna. The\"\x1b[0m"));
  EXPECT_THAT(out_.str(), HasSubstr("\" \x1b[1;32mLisbon. The\"\x1b[0m"));
}

TEST_F(RomectlCompareTest, JsonIsTheResponse) {
  ASSERT_EQ(Run({"--json", "compare", "--b=s-1", "--prompt=p", "--prompt=q", "--kl"}), kExitOk);
  const nlohmann::json json = nlohmann::json::parse(out_.str());
  ASSERT_EQ(json["rows"].size(), 2u);
  EXPECT_EQ(json["rows"][1]["prompt"], "q");
  EXPECT_EQ(json["rows"][0]["generation_b"], " Lisbon. The");
  EXPECT_DOUBLE_EQ(json["rows"][0]["kl"].get<double>(), 0.75);
  EXPECT_EQ(json["session_b"], "s-1");
  EXPECT_EQ(json["generation_rows"], 4);
}

TEST_F(RomectlCompareTest, ServerErrorsExitOneWithTheCode) {
  EXPECT_EQ(Run({"compare", "--b=missing", "--prompt=p"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("error: NOT_FOUND: variant b: session \"missing\" not found"));
}

TEST_F(RomectlCompareTest, ClientSendsTheRequestIntact) {
  RomedClient client(grpc::CreateChannel(*target_, grpc::InsecureChannelCredentials()),
                     absl::Seconds(10));
  romed::v1::CompareRequest request;
  request.add_prompts("Dora");
  request.add_targets(" Vienna");
  request.mutable_a()->set_session_id("s-a");
  request.set_ignore_eos(true);
  ASSERT_OK_AND_ASSIGN(romed::v1::CompareResponse response, client.Compare(request));
  EXPECT_EQ(response.rows_size(), 1);
  EXPECT_EQ(response.session_a(), "s-a");
  EXPECT_EQ(editor_->last().SerializeAsString(), request.SerializeAsString());
}

TEST(VocabTokenTextTest, MapsGpt2ByteSymbolsBackToText) {
  EXPECT_EQ(VocabTokenText("ĠParis"), " Paris");
  EXPECT_EQ(VocabTokenText("Ċ"), "\n");
  EXPECT_EQ(VocabTokenText("hello"), "hello");
  EXPECT_EQ(VocabTokenText("Ã©"), "\xc3\xa9");  // é as GPT-2 stores it
}

}  // namespace
}  // namespace romed::client
