#include "serving/scheduler.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What the fake instances saw, and a gate the test opens and closes to hold executions.
struct Control {
  std::mutex mu;
  std::condition_variable cv;
  bool gate_open = true;
  int started = 0;
  int executing = 0;
  int max_executing = 0;
  std::vector<Shape> shapes;                // first input's shape per execution
  std::vector<std::vector<float>> values;   // first input's values per execution (FP32)
  std::vector<const void*> input_pointers;  // first input's data pointer per execution

  void Close() {
    std::lock_guard<std::mutex> lock(mu);
    gate_open = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu);
      gate_open = true;
    }
    cv.notify_all();
  }
  // Waits until `n` executions have started (they may be held at the gate).
  void WaitStarted(int n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return started >= n; });
  }
  void WaitExecuting(int n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return executing >= n; });
  }
  std::vector<int64_t> BatchSizes() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<int64_t> sizes;
    for (const Shape& s : shapes) sizes.push_back(s[0]);
    return sizes;
  }
};

// A value that makes an execution fail, as a bad input would.
constexpr float kPoison = -7;

// FP32 model: y = 2 * x (same shape), z = the sum of each row ([batch, 1]); fails when an input
// value is kPoison. BYTES model: y = x with "!" appended to each string.
class FakeInstance : public BackendInstance {
 public:
  explicit FakeInstance(std::shared_ptr<Control> control) : control_(std::move(control)) {}

  absl::Status Execute(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) override {
    const Tensor& x = inputs[0];
    {
      std::unique_lock<std::mutex> lock(control_->mu);
      ++control_->started;
      ++control_->executing;
      control_->max_executing = std::max(control_->max_executing, control_->executing);
      control_->shapes.push_back(x.shape());
      control_->input_pointers.push_back(x.raw_data());
      std::vector<float> values;
      if (x.dtype() == DataType::kFp32) {
        values.assign(x.data<float>(), x.data<float>() + x.NumElements());
      }
      control_->values.push_back(std::move(values));
      control_->cv.notify_all();
      control_->cv.wait(lock, [&] { return control_->gate_open; });
    }
    absl::Status status = Poisoned(x) ? absl::InternalError("poisoned input") : Compute(x, outputs);
    {
      std::lock_guard<std::mutex> lock(control_->mu);
      --control_->executing;
    }
    return status;
  }

 private:
  static bool Poisoned(const Tensor& x) {
    if (x.dtype() != DataType::kFp32) return false;
    return std::find(x.data<float>(), x.data<float>() + x.NumElements(), kPoison) !=
           x.data<float>() + x.NumElements();
  }

  // Reuses an output buffer as the engine does: only when nobody else holds it.
  static Tensor& Output(std::vector<Tensor>* outputs, size_t i, DataType dtype, Shape shape) {
    if (outputs->size() <= i) outputs->resize(i + 1);
    Tensor& t = (*outputs)[i];
    if (!(t.dtype() == dtype && t.shape() == shape && t.unique()))
      t = Tensor::Allocate(dtype, shape);
    return t;
  }

  absl::Status Compute(const Tensor& x, std::vector<Tensor>* outputs) {
    if (x.dtype() == DataType::kBytes) {
      outputs->resize(1);
      Tensor y = Tensor::Allocate(DataType::kBytes, x.shape());
      for (int64_t i = 0; i < x.NumElements(); ++i) y.strings()[i] = x.strings()[i] + "!";
      (*outputs)[0] = y;
      return absl::OkStatus();
    }
    Tensor& y = Output(outputs, 0, DataType::kFp32, x.shape());
    for (int64_t i = 0; i < x.NumElements(); ++i) y.data<float>()[i] = 2 * x.data<float>()[i];
    const int64_t rows = x.rank() > 0 ? x.dim(0) : 1;
    const int64_t cols = rows > 0 ? x.NumElements() / rows : 0;
    Tensor& z = Output(outputs, 1, DataType::kFp32, Shape{rows, 1});
    for (int64_t r = 0; r < rows; ++r) {
      float sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += x.data<float>()[r * cols + c];
      z.data<float>()[r] = sum;
    }
    return absl::OkStatus();
  }

  std::shared_ptr<Control> control_;
};

class FakeBackend : public Backend {
 public:
  FakeBackend(std::shared_ptr<Control> control, DataType dtype) : control_(std::move(control)) {
    inputs_ = {{"x", dtype, {-1, -1}}};
    outputs_ = {{"y", dtype, {-1, -1}}};
    if (dtype == DataType::kFp32) outputs_.push_back({"z", DataType::kFp32, {-1, 1}});
  }
  const std::vector<BackendTensorInfo>& inputs() const override { return inputs_; }
  const std::vector<BackendTensorInfo>& outputs() const override { return outputs_; }
  absl::StatusOr<std::unique_ptr<BackendInstance>> CreateInstance() override {
    return std::make_unique<FakeInstance>(control_);
  }

 private:
  std::shared_ptr<Control> control_;
  std::vector<BackendTensorInfo> inputs_;
  std::vector<BackendTensorInfo> outputs_;
};

// Collects the callbacks' results by request id.
class Results {
 public:
  InferCallback Callback(const std::string& id) {
    return [this, id](absl::StatusOr<InferResponse> result) {
      std::lock_guard<std::mutex> lock(mu_);
      results_.emplace(id, std::move(result));
      order_.push_back(id);
      cv_.notify_all();
    };
  }
  void WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return results_.size() >= n; });
  }
  absl::StatusOr<InferResponse> Get(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = results_.find(id);
    if (it == results_.end()) return absl::NotFoundError("no result for " + id);
    return it->second;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return results_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, absl::StatusOr<InferResponse>> results_;
  std::vector<std::string> order_;
};

// A request with `rows` rows of `cols` values, base, base+1, ...
std::unique_ptr<InferRequest> FloatRequest(const std::string& id, int64_t rows, int64_t cols,
                                           float base) {
  auto request = std::make_unique<InferRequest>();
  request->model_name = "fake";
  request->id = id;
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{rows, cols});
  for (int64_t i = 0; i < rows * cols; ++i) x.data<float>()[i] = base + static_cast<float>(i);
  request->inputs.push_back({"x", std::move(x), {}});
  return request;
}

std::vector<float> Values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.NumElements());
}

struct Fixture {
  explicit Fixture(SchedulerOptions options, int instances = 1, DataType dtype = DataType::kFp32) {
    control = std::make_shared<Control>();
    backend = std::make_shared<FakeBackend>(control, dtype);
    stats = std::make_shared<ModelStats>();
    std::vector<std::unique_ptr<BackendInstance>> created;
    for (int i = 0; i < instances; ++i) created.push_back(*backend->CreateInstance());
    options.model_name = "fake";
    options.model_version = "3";
    auto made = Scheduler::Create(std::move(options), backend, std::move(created), stats);
    EXPECT_TRUE(made.ok()) << made.status();
    scheduler = *std::move(made);
  }
  void Enqueue(const std::string& id, int64_t rows = 1, int64_t cols = 2, float base = 0) {
    scheduler->Enqueue(FloatRequest(id, rows, cols, base), results.Callback(id));
  }
  // Starts one request and holds it at the gate, so that later requests queue up.
  void Hold(const std::string& id) {
    control->Close();
    Enqueue(id);
    control->WaitStarted(1);
  }

  std::shared_ptr<Control> control;
  std::shared_ptr<FakeBackend> backend;
  std::shared_ptr<ModelStats> stats;
  std::unique_ptr<Scheduler> scheduler;
  Results results;
};

SchedulerOptions Batching(int max_batch_size, uint64_t delay_us, std::vector<int> preferred = {}) {
  SchedulerOptions options;
  options.max_batch_size = max_batch_size;
  options.dynamic_batching = true;
  options.max_queue_delay_us = delay_us;
  options.preferred_batch_sizes = std::move(preferred);
  return options;
}

// Long enough never to expire in a test: batches form because they fill up.
constexpr uint64_t kForeverUs = 600'000'000;

TEST(SchedulerTest, ConcurrentRequestsFormOneBatch) {
  Fixture f(Batching(8, kForeverUs));
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&f, i] { f.Enqueue(absl::StrCat("r", i), 1, 2, 10.f * i); });
  }
  for (auto& t : clients) t.join();
  f.results.WaitFor(8);
  EXPECT_THAT(f.control->BatchSizes(), ElementsAre(8));
  for (int i = 0; i < 8; ++i) {
    auto r = f.results.Get(absl::StrCat("r", i));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->outputs.size(), 2u);
    EXPECT_EQ(r->outputs[0].name, "y");
    EXPECT_EQ(r->outputs[0].data.shape(), (Shape{1, 2}));
    EXPECT_THAT(Values(r->outputs[0].data), ElementsAre(20.f * i, 20.f * i + 2));
    EXPECT_EQ(r->outputs[1].name, "z");
    EXPECT_THAT(Values(r->outputs[1].data), ElementsAre(20.f * i + 1));
  }
}

TEST(SchedulerTest, EachRequestGetsItsOwnRows) {
  Fixture f(Batching(6, kForeverUs));
  f.Enqueue("a", 1, 3, 0);
  f.Enqueue("b", 2, 3, 100);
  f.Enqueue("c", 3, 3, 200);
  f.results.WaitFor(3);
  EXPECT_THAT(f.control->BatchSizes(), ElementsAre(6));
  auto a = f.results.Get("a");
  auto b = f.results.Get("b");
  auto c = f.results.Get("c");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->outputs[0].data.shape(), (Shape{1, 3}));
  EXPECT_THAT(Values(a->outputs[0].data), ElementsAre(0, 2, 4));
  EXPECT_EQ(b->outputs[0].data.shape(), (Shape{2, 3}));
  EXPECT_THAT(Values(b->outputs[0].data), ElementsAre(200, 202, 204, 206, 208, 210));
  EXPECT_THAT(Values(b->outputs[1].data), ElementsAre(303, 312));
  EXPECT_EQ(c->outputs[1].data.shape(), (Shape{3, 1}));
  EXPECT_THAT(Values(c->outputs[1].data), ElementsAre(603, 612, 621));
}

TEST(SchedulerTest, ResponsesStayIntactWhileLaterBatchesRun) {
  Fixture f(Batching(2, kForeverUs));
  for (int i = 0; i < 8; ++i) f.Enqueue(absl::StrCat("r", i), 1, 2, 10.f * i);
  f.results.WaitFor(8);
  EXPECT_THAT(f.control->BatchSizes(), ElementsAre(2, 2, 2, 2));
  for (int i = 0; i < 8; ++i) {
    auto r = f.results.Get(absl::StrCat("r", i));
    ASSERT_TRUE(r.ok());
    EXPECT_THAT(Values(r->outputs[0].data), ElementsAre(20.f * i, 20.f * i + 2));
  }
}

TEST(SchedulerTest, PreferredBatchSizeIsTheTarget) {
  Fixture f(Batching(8, kForeverUs, {4}));
  for (int i = 0; i < 8; ++i) f.Enqueue(absl::StrCat("r", i));
  f.results.WaitFor(8);
  EXPECT_THAT(f.control->BatchSizes(), ElementsAre(4, 4));
}

TEST(SchedulerTest, ExpiredDelaySendsTheLargestPreferredSizeReached) {
  Fixture f(Batching(8, /*delay_us=*/0, {2, 4}));
  f.Hold("first");
  f.Enqueue("a");
  f.Enqueue("b");
  f.Enqueue("c");
  f.control->Open();
  f.results.WaitFor(4);
  // Three queued rows: the preferred 2 go first, the last one after.
  EXPECT_THAT(f.control->BatchSizes(), ElementsAre(1, 2, 1));
}

TEST(SchedulerTest, BatchNeverExceedsMaxBatchSize) {
  Fixture f(Batching(4, 0));
  f.Hold("first");
  f.Enqueue("a", 3);
  f.Enqueue("b", 2);
  f.Enqueue("c", 1);
  f.Enqueue("d", 2);
  f.control->Open();
  f.results.WaitFor(5);
  // FIFO among compatible requests: "b" does not fit next to "a", so "a" goes alone.
  EXPECT_THAT(f.control->BatchSizes(), ElementsAre(1, 3, 3, 2));
  for (const char* id : {"first", "a", "b", "c", "d"}) EXPECT_TRUE(f.results.Get(id).ok()) << id;
}

TEST(SchedulerTest, DifferentNonBatchDimensionsExecuteApart) {
  Fixture f(Batching(8, 0));
  f.Hold("first");
  f.Enqueue("a2", 1, 2, 0);
  f.Enqueue("b3", 1, 3, 10);
  f.Enqueue("c2", 1, 2, 20);
  f.Enqueue("d3", 1, 3, 30);
  f.control->Open();
  f.results.WaitFor(5);
  std::vector<Shape> shapes;
  {
    std::lock_guard<std::mutex> lock(f.control->mu);
    shapes = f.control->shapes;
  }
  EXPECT_THAT(shapes, ElementsAre(Shape{1, 2}, Shape{2, 2}, Shape{2, 3}));
  auto c2 = f.results.Get("c2");
  auto d3 = f.results.Get("d3");
  ASSERT_TRUE(c2.ok() && d3.ok());
  EXPECT_THAT(Values(c2->outputs[0].data), ElementsAre(40, 42));
  EXPECT_THAT(Values(d3->outputs[0].data), ElementsAre(60, 62, 64));
}

TEST(SchedulerTest, WithoutDynamicBatchingEachRequestExecutesAlone) {
  SchedulerOptions options;
  options.max_batch_size = 8;
  Fixture f(options);
  f.Hold("first");
  for (int i = 0; i < 3; ++i) f.Enqueue(absl::StrCat("r", i), 2);
  f.control->Open();
  f.results.WaitFor(4);
  EXPECT_THAT(f.control->BatchSizes(), ElementsAre(1, 2, 2, 2));
}

TEST(SchedulerTest, ALoneRequestsInputsAreNotCopied) {
  Fixture f(Batching(8, 0));
  auto request = FloatRequest("a", 2, 2, 1);
  const void* data = request->inputs[0].data.raw_data();
  f.scheduler->Enqueue(std::move(request), f.results.Callback("a"));
  f.results.WaitFor(1);
  std::lock_guard<std::mutex> lock(f.control->mu);
  ASSERT_EQ(f.control->input_pointers.size(), 1u);
  EXPECT_EQ(f.control->input_pointers[0], data);
}

TEST(SchedulerTest, NonBatchingModelGetsShapesAsGiven) {
  Fixture f(SchedulerOptions{});
  auto request = std::make_unique<InferRequest>();
  request->id = "flat";
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{3});
  for (int i = 0; i < 3; ++i) x.data<float>()[i] = static_cast<float>(i);
  request->inputs.push_back({"x", x, {}});
  f.scheduler->Enqueue(std::move(request), f.results.Callback("flat"));
  f.results.WaitFor(1);
  auto r = f.results.Get("flat");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outputs[0].data.shape(), (Shape{3}));
  EXPECT_THAT(Values(r->outputs[0].data), ElementsAre(0, 2, 4));
}

TEST(SchedulerTest, ResponseCarriesTheRequestedOutputsInOrder) {
  Fixture f(Batching(4, 0));
  auto request = FloatRequest("id-7", 1, 2, 1);
  request->outputs = {{"z", true, {}}, {"y", false, {}}};
  f.scheduler->Enqueue(std::move(request), f.results.Callback("id-7"));
  f.results.WaitFor(1);
  auto r = f.results.Get("id-7");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_name, "fake");
  EXPECT_EQ(r->model_version, "3");
  EXPECT_EQ(r->id, "id-7");
  ASSERT_EQ(r->outputs.size(), 2u);
  EXPECT_EQ(r->outputs[0].name, "z");
  EXPECT_TRUE(r->outputs[0].binary_data);
  EXPECT_THAT(Values(r->outputs[0].data), ElementsAre(3));
  EXPECT_EQ(r->outputs[1].name, "y");
  EXPECT_FALSE(r->outputs[1].binary_data);
}

TEST(SchedulerTest, BytesTensorsBatchAndSplit) {
  Fixture f(Batching(4, 0), 1, DataType::kBytes);
  f.control->Close();
  auto make = [](const std::string& id, std::vector<std::string> words) {
    auto request = std::make_unique<InferRequest>();
    request->id = id;
    Tensor x = Tensor::Allocate(DataType::kBytes, Shape{static_cast<int64_t>(words.size()), 1});
    x.strings() = std::move(words);
    request->inputs.push_back({"x", std::move(x), {}});
    return request;
  };
  f.scheduler->Enqueue(make("first", {"hold"}), f.results.Callback("first"));
  f.control->WaitStarted(1);
  f.scheduler->Enqueue(make("a", {"x", "yy"}), f.results.Callback("a"));
  f.scheduler->Enqueue(make("b", {"zzz"}), f.results.Callback("b"));
  f.control->Open();
  f.results.WaitFor(3);
  EXPECT_THAT(f.control->BatchSizes(), ElementsAre(1, 3));
  auto a = f.results.Get("a");
  auto b = f.results.Get("b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->outputs[0].data.shape(), (Shape{2, 1}));
  EXPECT_THAT(a->outputs[0].data.strings(), ElementsAre("x!", "yy!"));
  EXPECT_THAT(b->outputs[0].data.strings(), ElementsAre("zzz!"));
}

TEST(SchedulerTest, FullQueueRejectsAtOnce) {
  SchedulerOptions options = Batching(1, 0);
  options.default_queue_policy.max_queue_size = 2;
  Fixture f(options);
  f.Hold("first");
  f.Enqueue("a");
  f.Enqueue("b");
  f.Enqueue("c");
  // The rejection is answered inline, before Enqueue returns.
  auto c = f.results.Get("c");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(c.status().message(), HasSubstr("model 'fake'"));
  EXPECT_THAT(c.status().message(), HasSubstr("max_queue_size 2"));
  EXPECT_EQ(f.scheduler->Pending(), 3);
  f.control->Open();
  f.results.WaitFor(4);
  for (const char* id : {"first", "a", "b"}) EXPECT_TRUE(f.results.Get(id).ok()) << id;
  EXPECT_EQ(f.stats->fail_rejected.load(), 1u);
  EXPECT_EQ(f.stats->fail.count.load(), 1u);
}

TEST(SchedulerTest, TimedOutRequestIsRejectedWithReject) {
  SchedulerOptions options;
  options.default_queue_policy.allow_timeout_override = true;
  Fixture f(options);
  f.Hold("first");
  auto late = FloatRequest("late", 1, 2, 0);
  late->timeout_us = 1000;
  f.scheduler->Enqueue(std::move(late), f.results.Callback("late"));
  f.Enqueue("patient");
  // The timeout passes while the only instance is held.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  f.control->Open();
  f.results.WaitFor(3);
  auto r = f.results.Get("late");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("model 'fake': request timeout expired"));
  EXPECT_TRUE(f.results.Get("patient").ok());
  EXPECT_EQ(f.control->BatchSizes().size(), 2u);
  EXPECT_EQ(f.stats->fail_rejected.load(), 1u);
}

TEST(SchedulerTest, RequestTimeoutIsIgnoredUnlessOverrideIsAllowed) {
  Fixture f(SchedulerOptions{});
  f.Hold("first");
  auto late = FloatRequest("late", 1, 2, 0);
  late->timeout_us = 1000;
  f.scheduler->Enqueue(std::move(late), f.results.Callback("late"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  f.control->Open();
  f.results.WaitFor(2);
  EXPECT_TRUE(f.results.Get("late").ok());
}

TEST(SchedulerTest, RequestMayShortenButNotLengthenTheTimeout) {
  SchedulerOptions options;
  options.priority_levels = 2;
  options.default_priority_level = 2;
  QueuePolicy short_timeout;
  short_timeout.allow_timeout_override = true;
  short_timeout.default_timeout_us = 1000;
  options.priority_queue_policy[2] = short_timeout;
  Fixture f(options);
  f.control->Close();
  // Level 1 has no timeout, so the held request cannot expire however slow the machine is.
  auto first = FloatRequest("first", 1, 2, 0);
  first->priority = 1;
  f.scheduler->Enqueue(std::move(first), f.results.Callback("first"));
  f.control->WaitStarted(1);
  auto late = FloatRequest("late", 1, 2, 0);
  late->timeout_us = kForeverUs;
  f.scheduler->Enqueue(std::move(late), f.results.Callback("late"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  f.control->Open();
  f.results.WaitFor(2);
  EXPECT_TRUE(f.results.Get("first").ok());
  EXPECT_EQ(f.results.Get("late").status().code(), absl::StatusCode::kUnavailable);
}

TEST(SchedulerTest, TimedOutRequestIsDelayedWithDelay) {
  SchedulerOptions options;
  options.default_queue_policy.allow_timeout_override = true;
  options.default_queue_policy.timeout_action = QueuePolicy::TimeoutAction::kDelay;
  Fixture f(options);
  f.Hold("first");
  auto late = FloatRequest("late", 1, 2, 100);
  late->timeout_us = 1000;
  f.scheduler->Enqueue(std::move(late), f.results.Callback("late"));
  f.Enqueue("on-time", 1, 2, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  f.control->Open();
  f.results.WaitFor(3);
  EXPECT_TRUE(f.results.Get("late").ok());
  EXPECT_TRUE(f.results.Get("on-time").ok());
  std::lock_guard<std::mutex> lock(f.control->mu);
  ASSERT_EQ(f.control->values.size(), 3u);
  // The expired request waits behind the one that has not expired.
  EXPECT_EQ(f.control->values[1][0], 200);
  EXPECT_EQ(f.control->values[2][0], 100);
}

TEST(SchedulerTest, HigherPriorityIsServedFirst) {
  SchedulerOptions options;
  options.priority_levels = 3;
  options.default_priority_level = 2;
  Fixture f(options);
  f.Hold("first");
  auto add = [&](const std::string& id, uint32_t priority, float base) {
    auto request = FloatRequest(id, 1, 2, base);
    request->priority = priority;
    f.scheduler->Enqueue(std::move(request), f.results.Callback(id));
  };
  add("low", 3, 1);
  add("default", 0, 2);
  add("high", 1, 3);
  add("default2", 2, 4);
  f.control->Open();
  f.results.WaitFor(5);
  std::vector<float> order;
  {
    std::lock_guard<std::mutex> lock(f.control->mu);
    for (size_t i = 1; i < f.control->values.size(); ++i) order.push_back(f.control->values[i][0]);
  }
  EXPECT_THAT(order, ElementsAre(3, 2, 4, 1));
}

TEST(SchedulerTest, PerLevelQueuePolicy) {
  SchedulerOptions options;
  options.priority_levels = 2;
  options.default_priority_level = 2;
  QueuePolicy small;
  small.max_queue_size = 1;
  options.priority_queue_policy[2] = small;
  Fixture f(options);
  f.Hold("first");
  f.Enqueue("low1");
  f.Enqueue("low2");
  auto high = FloatRequest("high", 1, 2, 0);
  high->priority = 1;
  f.scheduler->Enqueue(std::move(high), f.results.Callback("high"));
  auto low2 = f.results.Get("low2");
  ASSERT_FALSE(low2.ok());
  EXPECT_THAT(low2.status().message(), HasSubstr("priority level 2"));
  f.control->Open();
  f.results.WaitFor(4);
  EXPECT_TRUE(f.results.Get("high").ok());
  EXPECT_TRUE(f.results.Get("low1").ok());
}

TEST(SchedulerTest, InstancesRunInParallel) {
  SchedulerOptions options;
  options.max_batch_size = 4;
  Fixture f(options, /*instances=*/3);
  f.control->Close();
  for (int i = 0; i < 3; ++i) f.Enqueue(absl::StrCat("r", i));
  // All three executions are inside the backend at once.
  f.control->WaitExecuting(3);
  f.control->Open();
  f.results.WaitFor(3);
  EXPECT_EQ(f.control->max_executing, 3);
}

TEST(SchedulerTest, ExecutionFailureFailsTheWholeBatchAndServingGoesOn) {
  Fixture f(Batching(4, 0));
  f.Hold("first");
  f.Enqueue("r0", 1, 2, 0);
  f.Enqueue("bad", 1, 2, kPoison);
  f.Enqueue("r2", 1, 2, 5);
  f.control->Open();
  f.results.WaitFor(4);
  EXPECT_THAT(f.control->BatchSizes(), ElementsAre(1, 3));
  EXPECT_TRUE(f.results.Get("first").ok());
  for (const char* id : {"r0", "bad", "r2"}) {
    auto r = f.results.Get(id);
    ASSERT_FALSE(r.ok()) << id;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(r.status().message(), "model 'fake': poisoned input");
  }
  f.Enqueue("after");
  f.results.WaitFor(5);
  EXPECT_TRUE(f.results.Get("after").ok());
  EXPECT_EQ(f.stats->fail_backend.load(), 3u);
  EXPECT_EQ(f.stats->fail.count.load(), 3u);
  EXPECT_EQ(f.stats->success.count.load(), 2u);
  EXPECT_EQ(f.stats->execution_count.load(), 2u);
  EXPECT_EQ(f.stats->pending.load(), 0);
}

TEST(SchedulerTest, ShutdownFinishesQueuedRequestsThenRefuses) {
  Fixture f(Batching(2, 0));
  f.Hold("first");
  for (int i = 0; i < 5; ++i) f.Enqueue(absl::StrCat("r", i));
  std::thread stopper([&] { f.scheduler->Shutdown(); });
  // Requests keep coming until one is refused: Shutdown has begun.
  struct Answer {
    std::atomic<bool> done{false};
    absl::Status status;
  };
  std::atomic<int> late_answered{0};
  int late_sent = 0;
  absl::Status refused;
  for (;;) {
    auto answer = std::make_shared<Answer>();
    ++late_sent;
    f.scheduler->Enqueue(FloatRequest("late", 1, 2, 0),
                         [answer, &late_answered](absl::StatusOr<InferResponse> r) {
                           answer->status = r.status();
                           answer->done = true;
                           late_answered.fetch_add(1);
                         });
    if (answer->done.load()) {
      refused = answer->status;
      break;
    }
  }
  f.control->Open();
  stopper.join();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.message(), HasSubstr("shutting down"));
  EXPECT_EQ(f.results.size(), 6u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(f.results.Get(absl::StrCat("r", i)).ok());
  EXPECT_EQ(late_answered.load(), late_sent);
  EXPECT_EQ(f.scheduler->Pending(), 0);
  f.Enqueue("after-shutdown");
  EXPECT_EQ(f.results.Get("after-shutdown").status().code(), absl::StatusCode::kUnavailable);
}

TEST(SchedulerTest, StatisticsCountRequestsAndExecutions) {
  Fixture f(Batching(8, kForeverUs));
  for (int i = 0; i < 8; ++i) f.Enqueue(absl::StrCat("r", i));
  f.results.WaitFor(8);
  f.scheduler->Shutdown();
  const ModelStats& s = *f.stats;
  EXPECT_EQ(s.success.count.load(), 8u);
  EXPECT_EQ(s.fail.count.load(), 0u);
  EXPECT_EQ(s.queue.count.load(), 8u);
  EXPECT_EQ(s.compute_input.count.load(), 8u);
  EXPECT_EQ(s.compute_infer.count.load(), 8u);
  EXPECT_EQ(s.compute_output.count.load(), 8u);
  EXPECT_EQ(s.inference_count.load(), 8u);
  EXPECT_EQ(s.execution_count.load(), 1u);
  EXPECT_EQ(s.pending.load(), 0);
  EXPECT_GT(s.last_inference_ms.load(), 0);
  EXPECT_EQ(s.latency_us.Snap().count, 8u);
  std::lock_guard<std::mutex> lock(s.batch_mu);
  ASSERT_EQ(s.batches.size(), 1u);
  EXPECT_EQ(s.batches.begin()->first, 8);
  EXPECT_EQ(s.batches.begin()->second.compute_infer.count.load(), 1u);
}

TEST(SchedulerTest, InvalidBatchIsRefusedInline) {
  Fixture f(Batching(4, 0));
  f.Enqueue("too-big", 5);
  auto r = f.results.Get("too-big");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.stats->fail_other.load(), 1u);
}

TEST(SchedulerTest, CreateRefusesBadOptions) {
  auto control = std::make_shared<Control>();
  auto backend = std::make_shared<FakeBackend>(control, DataType::kFp32);
  auto create = [&](SchedulerOptions options, int instances) {
    std::vector<std::unique_ptr<BackendInstance>> created;
    for (int i = 0; i < instances; ++i) created.push_back(*backend->CreateInstance());
    options.model_name = "fake";
    return Scheduler::Create(options, backend, std::move(created), nullptr).status();
  };
  EXPECT_THAT(create(Batching(4, 0), 0).message(), HasSubstr("at least one backend instance"));
  EXPECT_THAT(create(Batching(4, 0, {8}), 1).message(), HasSubstr("preferred_batch_size 8"));
  SchedulerOptions levels;
  levels.priority_levels = 2;
  levels.default_priority_level = 3;
  EXPECT_THAT(create(levels, 1).message(), HasSubstr("default_priority_level 3"));
  levels.default_priority_level = 1;
  levels.priority_queue_policy[5] = QueuePolicy{};
  EXPECT_THAT(create(levels, 1).message(), HasSubstr("level 5"));
}

TEST(SchedulerTest, SchedulerMayBeDestroyedFromItsOwnCallback) {
  Fixture f(Batching(4, 0));
  std::mutex mu;
  std::condition_variable cv;
  bool destroyed = false;
  f.scheduler->Enqueue(FloatRequest("last", 1, 2, 0), [&](absl::StatusOr<InferResponse> r) {
    EXPECT_TRUE(r.ok());
    f.scheduler.reset();
    std::lock_guard<std::mutex> lock(mu);
    destroyed = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return destroyed; });
}

TEST(SchedulerTest, ConcurrentEnqueueAndShutdownAnswerEveryRequestOnce) {
  Fixture f(Batching(8, 100), /*instances=*/2);
  std::atomic<int> answered{0};
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        f.scheduler->Enqueue(FloatRequest("r", 1, 2, 0), [&](absl::StatusOr<InferResponse> r) {
          if (r.ok()) ok.fetch_add(1);
          answered.fetch_add(1);
        });
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  f.scheduler->Shutdown();
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), 800);
  EXPECT_EQ(f.stats->success.count.load(), static_cast<uint64_t>(ok.load()));
  EXPECT_EQ(f.stats->pending.load(), 0);
}

}  // namespace
}  // namespace flywheel::serving
