#include "serving/request_queue.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serving/batch_assembly.h"

namespace flywheel::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A queued request of `rows` x `cols` FP32 whose id says which it is.
QueuedRequest Make(const std::string& id, int64_t rows, int64_t cols, int64_t enqueue_ns,
                   uint32_t level = 0, int64_t deadline_ns = kNoDeadline) {
  QueuedRequest q;
  q.request = std::make_unique<InferRequest>();
  q.request->id = id;
  q.request->inputs.push_back({"x", Tensor::Allocate(DataType::kFp32, Shape{rows, cols}), {}});
  q.rows = rows;
  q.enqueue_ns = enqueue_ns;
  q.level = level;
  q.deadline_ns = deadline_ns;
  return q;
}

void Push(RequestQueue& queue, QueuedRequest q) { ASSERT_TRUE(queue.Push(q, "m").ok()); }

std::vector<std::string> Ids(const std::vector<QueuedRequest>& batch) {
  std::vector<std::string> ids;
  for (const QueuedRequest& q : batch) ids.push_back(q.request->id);
  return ids;
}

BatchingPolicy Policy(int64_t max, int64_t delay_ns, std::vector<int64_t> preferred = {}) {
  return {max, std::move(preferred), delay_ns};
}

// Plans and, when ready, takes the batch; returns the ids taken.
std::vector<std::string> Next(RequestQueue& queue, const BatchingPolicy& policy, int64_t now_ns,
                              BatchPlan* plan) {
  queue.Plan(policy, now_ns, /*flush=*/false, BatchCompatible, plan);
  std::vector<QueuedRequest> batch;
  if (plan->ready) queue.Take(plan->picks, &batch);
  return Ids(batch);
}

TEST(RequestQueueTest, WaitsForMoreUntilTheOldestRequestsDelayPasses) {
  RequestQueue queue(SchedulerOptions{});
  Push(queue, Make("a", 1, 2, 100));
  Push(queue, Make("b", 1, 2, 200));
  BatchPlan plan;
  EXPECT_TRUE(Next(queue, Policy(8, 1000), 500, &plan).empty());
  EXPECT_FALSE(plan.ready);
  EXPECT_EQ(plan.wake_ns, 1100);
  EXPECT_THAT(Next(queue, Policy(8, 1000), 1100, &plan), ElementsAre("a", "b"));
  EXPECT_TRUE(queue.empty());
}

TEST(RequestQueueTest, FullBatchGoesAtOnce) {
  RequestQueue queue(SchedulerOptions{});
  for (const char* id : {"a", "b", "c"}) Push(queue, Make(id, 1, 2, 0));
  BatchPlan plan;
  EXPECT_THAT(Next(queue, Policy(2, 1'000'000), 0, &plan), ElementsAre("a", "b"));
  EXPECT_EQ(queue.size(), 1u);
}

TEST(RequestQueueTest, FallsBackToTheLargestPreferredSizeReached) {
  RequestQueue queue(SchedulerOptions{});
  for (const char* id : {"a", "b", "c"}) Push(queue, Make(id, 1, 2, 0));
  BatchPlan plan;
  // Below the largest preferred size (4): wait while the delay lasts.
  EXPECT_TRUE(Next(queue, Policy(8, 1000, {2, 4}), 10, &plan).empty());
  EXPECT_THAT(Next(queue, Policy(8, 1000, {2, 4}), 1000, &plan), ElementsAre("a", "b"));
  EXPECT_THAT(Next(queue, Policy(8, 1000, {2, 4}), 1000, &plan), ElementsAre("c"));
}

TEST(RequestQueueTest, SkipsIncompatibleRequestsAndKeepsThemInOrder) {
  RequestQueue queue(SchedulerOptions{});
  Push(queue, Make("a", 1, 2, 0));
  Push(queue, Make("b", 1, 3, 0));
  Push(queue, Make("c", 2, 2, 0));
  Push(queue, Make("d", 1, 3, 0));
  BatchPlan plan;
  EXPECT_THAT(Next(queue, Policy(8, 0), 0, &plan), ElementsAre("a", "c"));
  EXPECT_EQ(plan.rows, 3);
  EXPECT_THAT(Next(queue, Policy(8, 0), 0, &plan), ElementsAre("b", "d"));
}

TEST(RequestQueueTest, WithoutBatchingTakesOneRequest) {
  RequestQueue queue(SchedulerOptions{});
  Push(queue, Make("a", 1, 2, 0));
  Push(queue, Make("b", 1, 2, 0));
  BatchPlan plan;
  EXPECT_THAT(Next(queue, Policy(0, 1'000'000), 0, &plan), ElementsAre("a"));
}

TEST(RequestQueueTest, PrioritiesAndDelayedRequestsInServiceOrder) {
  SchedulerOptions options;
  options.priority_levels = 2;
  options.default_priority_level = 2;
  options.default_queue_policy.timeout_action = QueuePolicy::TimeoutAction::kDelay;
  RequestQueue queue(options);
  EXPECT_EQ(queue.LevelOf(0), 1u);
  EXPECT_EQ(queue.LevelOf(1), 0u);
  EXPECT_EQ(queue.LevelOf(7), 1u);
  Push(queue, Make("low", 1, 2, 0, 1));
  Push(queue, Make("high-expiring", 1, 2, 0, 0, /*deadline_ns=*/50));
  Push(queue, Make("high", 1, 2, 0, 0));
  EXPECT_EQ(queue.next_deadline_ns(), 50);
  std::vector<QueuedRequest> rejected;
  queue.ExpireTimedOut(100, &rejected);
  EXPECT_TRUE(rejected.empty());
  EXPECT_EQ(queue.next_deadline_ns(), kNoDeadline);
  BatchPlan plan;
  EXPECT_THAT(Next(queue, Policy(0, 0), 100, &plan), ElementsAre("high"));
  EXPECT_THAT(Next(queue, Policy(0, 0), 100, &plan), ElementsAre("high-expiring"));
  EXPECT_THAT(Next(queue, Policy(0, 0), 100, &plan), ElementsAre("low"));
}

TEST(RequestQueueTest, RejectPolicyRemovesExpiredRequests) {
  RequestQueue queue(SchedulerOptions{});
  Push(queue, Make("a", 1, 2, 0, 0, 50));
  Push(queue, Make("b", 1, 2, 0));
  Push(queue, Make("c", 1, 2, 0, 0, 500));
  std::vector<QueuedRequest> rejected;
  queue.ExpireTimedOut(49, &rejected);
  EXPECT_TRUE(rejected.empty());
  queue.ExpireTimedOut(50, &rejected);
  EXPECT_THAT(Ids(rejected), ElementsAre("a"));
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(queue.next_deadline_ns(), 500);
}

TEST(RequestQueueTest, TimeoutOverrideOnlyShortens) {
  SchedulerOptions options;
  options.default_queue_policy.default_timeout_us = 1000;
  RequestQueue strict(options);
  InferRequest request;
  request.timeout_us = 10;
  EXPECT_EQ(strict.TimeoutUsOf(request, 0), 1000u);
  options.default_queue_policy.allow_timeout_override = true;
  RequestQueue lenient(options);
  EXPECT_EQ(lenient.TimeoutUsOf(request, 0), 10u);
  request.timeout_us = 5000;
  EXPECT_EQ(lenient.TimeoutUsOf(request, 0), 1000u);
  request.timeout_us = 0;
  EXPECT_EQ(lenient.TimeoutUsOf(request, 0), 1000u);
}

TEST(RequestQueueTest, FullLevelRefusesWithTheLimit) {
  SchedulerOptions options;
  options.default_queue_policy.max_queue_size = 1;
  RequestQueue queue(options);
  Push(queue, Make("a", 1, 2, 0));
  QueuedRequest b = Make("b", 1, 2, 0);
  absl::Status status = queue.Push(b, "rank");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("model 'rank'"));
  EXPECT_THAT(status.message(), HasSubstr("max_queue_size 1"));
  // The refused request stays with the caller, to be answered.
  ASSERT_NE(b.request, nullptr);
  EXPECT_EQ(b.request->id, "b");
}

}  // namespace
}  // namespace flywheel::serving
