#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serving/scheduler.h"

namespace flywheel::serving {
namespace {

using ::testing::HasSubstr;

IOSpec Spec(std::string name, DataType dtype, std::vector<int64_t> dims, bool optional = false) {
  IOSpec spec;
  spec.name = std::move(name);
  spec.dtype = dtype;
  spec.dims = std::move(dims);
  spec.optional = optional;
  return spec;
}

InferInput Input(std::string name, DataType dtype, Shape shape) {
  return {std::move(name), Tensor::Allocate(dtype, std::move(shape), /*zero=*/true), {}};
}

class ValidateRequestTest : public ::testing::Test {
 protected:
  ValidateRequestTest()
      : inputs_({Spec("x", DataType::kFp32, {4}), Spec("ids", DataType::kInt64, {-1, 3}, true)}),
        outputs_({Spec("score", DataType::kFp32, {1}), Spec("emb", DataType::kFp32, {8})}) {}

  absl::Status Validate(InferRequest* request, int max_batch_size = 8) {
    return ValidateRequest("rank", max_batch_size, inputs_, outputs_, request);
  }

  std::vector<IOSpec> inputs_;
  std::vector<IOSpec> outputs_;
};

TEST_F(ValidateRequestTest, AcceptsAValidRequestAndOrdersInputsAsDeclared) {
  InferRequest request;
  request.inputs.push_back(Input("ids", DataType::kInt64, {2, 5, 3}));
  request.inputs.push_back(Input("x", DataType::kFp32, {2, 4}));
  request.outputs.push_back({"emb", true, {}});
  ASSERT_TRUE(Validate(&request).ok());
  ASSERT_EQ(request.inputs.size(), 2u);
  EXPECT_EQ(request.inputs[0].name, "x");
  EXPECT_EQ(request.inputs[1].name, "ids");
  EXPECT_EQ(request.inputs[1].data.shape(), (Shape{2, 5, 3}));
}

TEST_F(ValidateRequestTest, OptionalInputMayBeAbsent) {
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kFp32, {1, 4}));
  EXPECT_TRUE(Validate(&request).ok());
}

TEST_F(ValidateRequestTest, NamesTheExpectedAndGivenTypeAndShape) {
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kInt64, {2, 4}));
  absl::Status status = Validate(&request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "model 'rank' input 'x': expected FP32 [-1,4], got INT64 [2,4]");

  request.inputs[0] = Input("x", DataType::kFp32, {2, 5});
  EXPECT_EQ(Validate(&request).message(),
            "model 'rank' input 'x': expected FP32 [-1,4], got FP32 [2,5]");
  request.inputs[0] = Input("x", DataType::kFp32, {4});
  EXPECT_EQ(Validate(&request).message(),
            "model 'rank' input 'x': expected FP32 [-1,4], got FP32 [4]");
}

TEST_F(ValidateRequestTest, VariableDimensionsMatchAnySize) {
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kFp32, {1, 4}));
  request.inputs.push_back(Input("ids", DataType::kInt64, {1, 17, 3}));
  EXPECT_TRUE(Validate(&request).ok());
  request.inputs[1] = Input("ids", DataType::kInt64, {1, 17, 2});
  EXPECT_THAT(Validate(&request).message(), HasSubstr("expected INT64 [-1,-1,3]"));
}

TEST_F(ValidateRequestTest, UnknownInputListsTheModelsInputs) {
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kFp32, {1, 4}));
  request.inputs.push_back(Input("w", DataType::kFp32, {1, 4}));
  absl::Status status = Validate(&request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model 'rank': unknown input 'w'"));
  EXPECT_THAT(status.message(), HasSubstr("'x', 'ids'"));
}

TEST_F(ValidateRequestTest, InputGivenTwiceIsRefused) {
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kFp32, {1, 4}));
  request.inputs.push_back(Input("x", DataType::kFp32, {1, 4}));
  EXPECT_THAT(Validate(&request).message(), HasSubstr("input 'x': given more than once"));
}

TEST_F(ValidateRequestTest, MissingRequiredInputIsNamed) {
  InferRequest request;
  request.inputs.push_back(Input("ids", DataType::kInt64, {1, 2, 3}));
  absl::Status status = Validate(&request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model 'rank' input 'x': required but missing"));
}

TEST_F(ValidateRequestTest, BatchSizeMustBeWithinMaxBatchSize) {
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kFp32, {9, 4}));
  EXPECT_THAT(Validate(&request).message(), HasSubstr("batch size 9"));
  EXPECT_THAT(Validate(&request).message(), HasSubstr("max_batch_size"));
  request.inputs[0] = Input("x", DataType::kFp32, {0, 4});
  EXPECT_THAT(Validate(&request).message(), HasSubstr("batch size 0"));
  request.inputs[0] = Input("x", DataType::kFp32, {8, 4});
  EXPECT_TRUE(Validate(&request).ok());
}

TEST_F(ValidateRequestTest, InputsMustAgreeOnTheBatchSize) {
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kFp32, {2, 4}));
  request.inputs.push_back(Input("ids", DataType::kInt64, {3, 1, 3}));
  EXPECT_THAT(Validate(&request).message(),
              HasSubstr("input 'ids': batch size 3 differs from input 'x' batch size 2"));
}

TEST_F(ValidateRequestTest, NonBatchingModelTakesShapesAsDeclared) {
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kFp32, {4}));
  EXPECT_TRUE(Validate(&request, /*max_batch_size=*/0).ok());
  request.inputs[0] = Input("x", DataType::kFp32, {1, 4});
  EXPECT_EQ(Validate(&request, 0).message(),
            "model 'rank' input 'x': expected FP32 [4], got FP32 [1,4]");
}

TEST_F(ValidateRequestTest, BytesElementCountMustMatchTheShape) {
  inputs_ = {Spec("text", DataType::kBytes, {2})};
  InferRequest request;
  request.inputs.push_back(Input("text", DataType::kBytes, {3, 2}));
  EXPECT_TRUE(Validate(&request).ok());
  request.inputs[0].data.strings().resize(5);
  EXPECT_THAT(Validate(&request).message(),
              HasSubstr("input 'text': shape [3,2] needs 6 BYTES elements, the data holds 5"));
}

TEST_F(ValidateRequestTest, DataMustBePresent) {
  InferRequest request;
  request.inputs.push_back({"x", Tensor::View(DataType::kFp32, Shape{2, 4}, nullptr), {}});
  EXPECT_THAT(Validate(&request).message(), HasSubstr("needs 32 bytes of FP32 data"));
  request.inputs[0].data = Tensor();
  EXPECT_THAT(Validate(&request).message(), HasSubstr("input 'x': the request carries no data"));
}

TEST_F(ValidateRequestTest, ReshapeKeepsTheBatchDimension) {
  inputs_[0].has_reshape = true;
  inputs_[0].reshape = {2, 2};
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kFp32, {3, 4}));
  ASSERT_TRUE(Validate(&request).ok());
  EXPECT_EQ(request.inputs[0].data.shape(), (Shape{3, 2, 2}));
}

TEST_F(ValidateRequestTest, ReshapeInfersOneVariableDimension) {
  inputs_ = {Spec("seq", DataType::kFp32, {-1, 2})};
  inputs_[0].has_reshape = true;
  inputs_[0].reshape = {-1};
  InferRequest request;
  request.inputs.push_back(Input("seq", DataType::kFp32, {2, 5, 2}));
  ASSERT_TRUE(Validate(&request).ok());
  EXPECT_EQ(request.inputs[0].data.shape(), (Shape{2, 10}));

  // Without batching the whole shape is reshaped.
  request.inputs[0] = Input("seq", DataType::kFp32, {3, 2});
  ASSERT_TRUE(Validate(&request, 0).ok());
  EXPECT_EQ(request.inputs[0].data.shape(), (Shape{6}));
}

TEST_F(ValidateRequestTest, ReshapeThatDoesNotFitIsAnError) {
  inputs_ = {Spec("seq", DataType::kFp32, {-1})};
  inputs_[0].has_reshape = true;
  inputs_[0].reshape = {-1, 4};
  InferRequest request;
  request.inputs.push_back(Input("seq", DataType::kFp32, {1, 6}));
  absl::Status status = Validate(&request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model 'rank' input 'seq'"));
  EXPECT_THAT(status.message(), HasSubstr("reshape [-1,4]"));
}

TEST_F(ValidateRequestTest, UnknownOrRepeatedOutputIsRefused) {
  InferRequest request;
  request.inputs.push_back(Input("x", DataType::kFp32, {1, 4}));
  request.outputs.push_back({"prob", false, {}});
  absl::Status status = Validate(&request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model 'rank': unknown output 'prob'"));
  EXPECT_THAT(status.message(), HasSubstr("'score', 'emb'"));

  request.outputs = {{"score", false, {}}, {"score", true, {}}};
  EXPECT_THAT(Validate(&request).message(), HasSubstr("output 'score': requested more than once"));
}

}  // namespace
}  // namespace flywheel::serving
