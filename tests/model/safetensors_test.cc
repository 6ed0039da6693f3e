#include "server/model/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("romed-safetensors"); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Writes raw bytes: length prefix (unless `header_length` overrides it),
  // `header`, then `data`.
  std::string WriteRaw(const std::string& header, const std::string& data,
                       int64_t header_length = -1) {
    const std::string path = Path("raw.safetensors");
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const uint64_t length = header_length >= 0 ? header_length : header.size();
    out.write(reinterpret_cast<const char*>(&length), sizeof(length));
    out << header << data;
    return path;
  }

  std::string WriteBytes(const std::string& bytes) {
    const std::string path = Path("short.safetensors");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    return path;
  }

  std::string dir_;
};

TEST_F(SafetensorsTest, RoundTripsEveryDtype) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", torch::randn({3, 5})},
      {"f16", torch::randn({4}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2, 2}).to(torch::kBFloat16)},
      {"i64", torch::arange(7, torch::kInt64)},
      {"i32", torch::arange(3, torch::kInt32).reshape({3, 1})},
      {"u8", torch::arange(9, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
  };
  const std::string path = Path("all.safetensors");
  ASSERT_OK(WriteSafetensors(path, tensors, {{"format", "pt"}}));
  ASSERT_OK_AND_ASSIGN(auto file, SafetensorsFile::Open(path));
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->entries().at("bf16").dtype, "BF16");
  for (const auto& [name, expected] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_OK_AND_ASSIGN(torch::Tensor actual, file->Read(name));
    EXPECT_EQ(actual.scalar_type(), expected.scalar_type());
    EXPECT_TRUE(torch::equal(actual, expected));
  }
}

TEST_F(SafetensorsTest, WritesNonContiguousScalarAndEmptyTensors) {
  torch::Tensor matrix = torch::randn({4, 6});
  const std::string path = Path("odd.safetensors");
  ASSERT_OK(WriteSafetensors(path, {{"transposed", matrix.t()},
                                    {"scalar", torch::tensor(3.5f)},
                                    {"empty", torch::zeros({0, 4})}}));
  ASSERT_OK_AND_ASSIGN(auto file, SafetensorsFile::Open(path));
  ASSERT_OK_AND_ASSIGN(torch::Tensor transposed, file->Read("transposed"));
  EXPECT_TRUE(torch::equal(transposed, matrix.t()));
  ASSERT_OK_AND_ASSIGN(torch::Tensor scalar, file->Read("scalar"));
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<float>(), 3.5f);
  ASSERT_OK_AND_ASSIGN(torch::Tensor empty, file->Read("empty"));
  EXPECT_EQ(empty.sizes().vec(), (std::vector<int64_t>{0, 4}));
}

TEST_F(SafetensorsTest, HeaderIsPaddedToEightBytes) {
  const std::string path = Path("padded.safetensors");
  ASSERT_OK(WriteSafetensors(path, {{"x", torch::ones({1})}}));
  ASSERT_OK_AND_ASSIGN(auto file, SafetensorsFile::Open(path));
  uint64_t header_length = 0;
  std::memcpy(&header_length, file->contents().data(), 8);
  EXPECT_EQ(header_length % 8, 0u);
  EXPECT_EQ(file->contents().size(), 8 + header_length + 4);
}

TEST_F(SafetensorsTest, DuplicateNamesAreRejected) {
  EXPECT_THAT(WriteSafetensors(Path("dup.safetensors"),
                               {{"x", torch::ones({1})}, {"x", torch::ones({1})}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"x\"")));
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  const std::string path = Path("absent.safetensors");
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
}

TEST_F(SafetensorsTest, FileShorterThanLengthFieldIsDataLoss) {
  const std::string path = WriteBytes("abc");
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr(path), HasSubstr("3 bytes"))));
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFileIsDataLoss) {
  const std::string path = WriteRaw("{}", "", /*header_length=*/1000);
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(path), HasSubstr("header length 1000"))));
}

TEST_F(SafetensorsTest, InvalidJsonHeaderIsDataLoss) {
  const std::string path = WriteRaw("{\"x\": [", "");
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr(path), HasSubstr("JSON"))));
}

TEST_F(SafetensorsTest, OffsetsPastTheDataAreDataLoss) {
  const std::string path =
      WriteRaw(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", "1234");
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(path), HasSubstr("\"x\""), HasSubstr("outside"))));
}

TEST_F(SafetensorsTest, SpanNotMatchingShapeIsDataLoss) {
  const std::string path =
      WriteRaw(R"({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", "12345678");
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(path), HasSubstr("\"x\""), HasSubstr("needs 12"))));
}

TEST_F(SafetensorsTest, OverlappingTensorsAreDataLoss) {
  const std::string path = WriteRaw(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                    "123456789012");
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(path), HasSubstr("\"a\""), HasSubstr("overlap"))));
}

TEST_F(SafetensorsTest, MalformedEntryIsDataLoss) {
  const std::string path =
      WriteRaw(R"({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "1234");
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr(path), HasSubstr("shape"))));
}

TEST_F(SafetensorsTest, UnknownDtypeIsInvalidArgument) {
  const std::string path =
      WriteRaw(R"({"x": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}})", "1234");
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("F8_E4M3"))));
}

TEST_F(SafetensorsTest, ReadingAnAbsentTensorNamesItAndTheFile) {
  const std::string path = Path("one.safetensors");
  ASSERT_OK(WriteSafetensors(path, {{"x", torch::ones({1})}}));
  ASSERT_OK_AND_ASSIGN(auto file, SafetensorsFile::Open(path));
  EXPECT_FALSE(file->Contains("y"));
  EXPECT_THAT(file->Read("y"), StatusIs(absl::StatusCode::kNotFound,
                                        AllOf(HasSubstr(path), HasSubstr("\"y\""))));
}

}  // namespace
}  // namespace romed
