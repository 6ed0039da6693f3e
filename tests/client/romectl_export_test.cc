// romectl's export, import and export-model commands and the RomedClient
// calls under them: how the command lines parse, and whole runs against a
// small fake of the three RPCs on a loopback port (the file's bytes arrive
// intact both ways, local files are never clobbered without --overwrite).
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/romectl_args.h"
#include "client/romectl_commands.h"
#include "tests/testing/status_matchers.h"

namespace romed::client {
namespace {

namespace fs = std::filesystem;
using ::romed::testing::StatusIs;
using ::testing::HasSubstr;

// Bytes with a NUL and high bytes: a file must travel unchanged.
const std::string kFile = std::string("\x10\0\0\0\0\0\0\0{\"a\":1}\xff\xfe", 17);

absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "romectl");
  return ParseInvocation(args);
}

TEST(ExportParseTest, CommandsTakeTheirFlags) {
  absl::StatusOr<Invocation> inv = Parse({"export", "--session=s-1", "--out=a.st"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kExport);
  EXPECT_EQ(inv->exporting.session_id, "s-1");
  EXPECT_FALSE(inv->exporting.overwrite);

  inv = Parse({"import", "--file=a.st", "--name=copy"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->exporting.import.name(), "copy");
  EXPECT_EQ(inv->exporting.import.session_id(), "");

  inv = Parse({"export-model", "--session=s-1", "--out=rel/dir", "--overwrite"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kExportModel);
  EXPECT_EQ(inv->exporting.export_model.out_dir(), (fs::current_path() / "rel/dir").string());
  EXPECT_TRUE(inv->exporting.export_model.overwrite());
}

TEST(ExportParseTest, MissingOrMisplacedFlagsAreUsageErrors) {
  EXPECT_THAT(Parse({"export", "--out=a"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--session")));
  EXPECT_THAT(Parse({"export-model", "--session=s"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--out")));
  EXPECT_THAT(Parse({"import"}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--file")));
  EXPECT_THAT(Parse({"import", "--file=a", "--session=s", "--name=n"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse({"import", "--file=a", "--overwrite"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not take")));
  EXPECT_THAT(Parse({"generate", "--prompt=x", "--out=a"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Answers the three RPCs with fixed replies and records the requests.
class FakeExporter final : public romed::v1::ModelEditor::Service {
 public:
  grpc::Status ExportSession(grpc::ServerContext*, const romed::v1::ExportSessionRequest* request,
                             romed::v1::ExportSessionResponse* reply) override {
    if (request->session_id() != "s-1") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no session " + request->session_id());
    }
    reply->set_file(kFile);
    reply->set_session_id("s-1");
    reply->set_num_edits(2);
    reply->set_num_deltas(3);
    reply->set_model_checksum("abc123");
    return grpc::Status::OK;
  }
  grpc::Status ImportSession(grpc::ServerContext*, const romed::v1::ImportSessionRequest* request,
                             romed::v1::ImportSessionResponse* reply) override {
    last_import = *request;
    reply->mutable_session()->set_id("s-2");
    reply->mutable_session()->set_num_edits(2);
    reply->set_created(true);
    reply->add_edits()->set_edit_id(1);
    reply->add_edits()->set_edit_id(2);
    reply->set_source_session_id("s-1");
    reply->add_source_edit_ids(4);
    reply->add_source_edit_ids(7);
    return grpc::Status::OK;
  }
  grpc::Status ExportModel(grpc::ServerContext*, const romed::v1::ExportModelRequest* request,
                           romed::v1::ExportModelResponse* reply) override {
    if (!request->overwrite()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          request->out_dir() + " already exists; pass --overwrite");
    }
    reply->set_out_dir(request->out_dir());
    reply->add_files("model.safetensors");
    reply->set_num_deltas(3);
    return grpc::Status::OK;
  }
  romed::v1::ImportSessionRequest last_import;
};

class ExportCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&editor_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target_ = absl::StrCat("127.0.0.1:", port);
    dir_ = fs::temp_directory_path() / absl::StrCat("romectl-export-test-", ::getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    server_->Shutdown();
    fs::remove_all(dir_);
  }

  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"romectl", "--server=" + target_, "--timeout_s=10"});
    out_.str("");
    err_.str("");
    return RomectlMain(args, out_, err_);
  }
  static std::string Read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  FakeExporter editor_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
  fs::path dir_;
  std::ostringstream out_, err_;
};

TEST_F(ExportCommandsTest, ExportWritesTheBytesAndImportSendsThemBack) {
  const std::string file = (dir_ / "s.safetensors").string();
  ASSERT_EQ(Run({"export", "--session=s-1", "--out=" + file}), kExitOk) << err_.str();
  EXPECT_EQ(Read(file), kFile);
  EXPECT_THAT(out_.str(), HasSubstr("exported session s-1: 2 edits, 3 deltas, 17 bytes"));

  ASSERT_EQ(Run({"import", "--file=" + file, "--name=copy"}), kExitOk) << err_.str();
  EXPECT_EQ(editor_.last_import.file(), kFile);
  EXPECT_EQ(editor_.last_import.name(), "copy");
  EXPECT_THAT(out_.str(), HasSubstr("imported 2 edits of session s-1 into new session s-2 "
                                    "(edit ids 4->1, 7->2)"));
  ASSERT_EQ(Run({"--json", "import", "--file=" + file}), kExitOk);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["session"]["id"], "s-2");
}

TEST_F(ExportCommandsTest, ExistingFilesNeedOverwriteAndMissingOnesAreErrors) {
  const std::string file = (dir_ / "taken").string();
  std::ofstream(file) << "keep me";
  EXPECT_EQ(Run({"export", "--session=s-1", "--out=" + file}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(err_.str(), HasSubstr("--overwrite"));
  EXPECT_EQ(Read(file), "keep me");
  EXPECT_EQ(Run({"export", "--session=s-1", "--out=" + file, "--overwrite"}), kExitOk);
  EXPECT_EQ(Read(file), kFile);

  EXPECT_EQ(Run({"export", "--session=s-9", "--out=" + (dir_ / "x").string()}), kExitRpcError);
  EXPECT_EQ(err_.str(), "error: NOT_FOUND: no session s-9\n");
  EXPECT_FALSE(fs::exists(dir_ / "x"));
  EXPECT_EQ(Run({"import", "--file=" + (dir_ / "missing").string()}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("NOT_FOUND"));
}

TEST_F(ExportCommandsTest, ExportModelSendsAnAbsoluteDirectory) {
  EXPECT_EQ(Run({"export-model", "--session=s-1", "--out=" + (dir_ / "m").string()}),
            kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("pass --overwrite"));
  ASSERT_EQ(Run({"--json", "export-model", "--session=s-1", "--out=" + (dir_ / "m").string(),
                 "--overwrite"}),
            kExitOk);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["out_dir"], (dir_ / "m").string());
}

}  // namespace
}  // namespace romed::client
