// The registry against a real folder: metadata round trips, alias moves and rollback chains,
// Resolve's cache, crash safety of the file write, and concurrent writers (threads, processes).
#include "lifecycle/registry.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lifecycle/registry_format.h"
#include "lifecycle/registry_json.h"
#include "rapidjson/document.h"

namespace flywheel::lifecycle {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            absl::StrCat("registry_test_", ::getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    for (int v : {1, 2, 3}) fs::create_directories(root_ / "rank" / std::to_string(v));
    fs::create_directories(root_ / "ads" / "1");
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<Registry> Open(RegistryOptions options = {}) {
    auto registry = Registry::Open(root_.string(), std::move(options));
    EXPECT_TRUE(registry.ok()) << registry.status();
    return registry.ok() ? *std::move(registry) : nullptr;
  }

  std::string ReadFile(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::vector<std::string> TempFiles(const std::string& model) {
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(root_ / model / ".flywheel")) {
      const std::string name = entry.path().filename().string();
      if (absl::StrContains(name, ".tmp-")) out.push_back(name);
    }
    return out;
  }

  fs::path root_;
  const ChangeAuthor alice_{"alice", "first rollout"};
};

VersionMetadata FullMetadata(int64_t version) {
  VersionMetadata m;
  m.version = version;
  m.created = absl::FromUnixMicros(1714564801500000);
  m.training_data = "s3://bucket/train/2024-05-01.parquet";
  m.code_revision = "9f1c2ab";
  m.parameters = {{"max_depth", "6"}, {"eta", "0.1"}, {"quote \"x\"", "line\nbreak"}};
  m.metrics = {{"auc", 0.8125}, {"logloss", 0.41234567890123}};
  m.parent = 1;
  m.description = "retrained on May data";
  m.registered_by = "ci";
  return m;
}

void ExpectSameMetadata(const VersionMetadata& a, const VersionMetadata& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.training_data, b.training_data);
  EXPECT_EQ(a.code_revision, b.code_revision);
  EXPECT_EQ(a.parameters, b.parameters);
  EXPECT_EQ(a.metrics, b.metrics);
  EXPECT_EQ(a.parent, b.parent);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.registered_by, b.registered_by);
}

TEST_F(RegistryTest, OpenRequiresAFolder) {
  auto missing = Registry::Open((root_ / "nope").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope"));
}

TEST_F(RegistryTest, RegisterAndShowRoundTripThroughTheFile) {
  auto registry = Open();
  ASSERT_TRUE(registry->Register("rank", FullMetadata(2), alice_).ok());
  // A second Registry reads the file the first one wrote.
  auto other = Open();
  auto shown = other->Show("rank", "2");
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_TRUE(shown->on_disk);
  EXPECT_TRUE(shown->registered);
  ExpectSameMetadata(shown->metadata, FullMetadata(2));
  EXPECT_TRUE(fs::exists(root_ / "rank" / ".flywheel" / "registry.json"));
  EXPECT_TRUE(TempFiles("rank").empty());
}

// The server's repository poll fingerprints the files and version folders of a model folder; the
// registry must not show up there, or every alias move would reload the model.
TEST_F(RegistryTest, TheModelFolderGainsOnlyTheRegistryFolder) {
  auto registry = Open();
  ASSERT_TRUE(registry->Register("rank", FullMetadata(2), alice_).ok());
  ASSERT_TRUE(registry->Promote("rank", 2, alice_).ok());
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root_ / "rank")) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_THAT(names, ElementsAre(".flywheel", "1", "2", "3"));
  EXPECT_TRUE(fs::is_directory(root_ / "rank" / ".flywheel"));
}

TEST_F(RegistryTest, RegisterFillsCreatedAndAuthor) {
  auto registry = Open();
  VersionMetadata m;
  m.version = 1;
  const absl::Time before = absl::Now();
  auto registered = registry->Register("rank", m, alice_);
  ASSERT_TRUE(registered.ok()) << registered.status();
  EXPECT_GE(registered->created, before - absl::Seconds(1));
  EXPECT_EQ(registered->registered_by, "alice");
}

TEST_F(RegistryTest, RegisterChecksTheVersionAndRefusesDuplicates) {
  auto registry = Open();
  VersionMetadata m = FullMetadata(7);
  auto missing = registry->Register("rank", m, alice_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("model 'rank'"));
  EXPECT_THAT(missing.status().message(), HasSubstr((root_ / "rank" / "7").string()));

  m.version = 2;
  ASSERT_TRUE(registry->Register("rank", m, alice_).ok());
  auto again = registry->Register("rank", m, alice_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  m.description = "replaced";
  ASSERT_TRUE(registry->Register("rank", m, alice_, /*replace=*/true).ok());
  EXPECT_EQ(registry->Show("rank", "2")->metadata.description, "replaced");

  m.metrics["auc"] = std::nan("");
  auto nan = registry->Register("rank", m, alice_, true);
  EXPECT_EQ(nan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.status().message(), HasSubstr("metric 'auc'"));
  m.metrics["auc"] = 0.5;
  m.parent = 2;
  EXPECT_EQ(registry->Register("rank", m, alice_, true).status().code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(registry->Register("nosuch", FullMetadata(2), alice_).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(registry->Register("../rank", FullMetadata(2), alice_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, UpdateMergesIntoExistingMetadata) {
  auto registry = Open();
  ASSERT_TRUE(registry->Register("rank", FullMetadata(3), alice_).ok());
  auto updated = registry->Update(
      "rank", 3, [](VersionMetadata& m) { m.metrics["holdout_auc"] = 0.9; }, alice_);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->metrics.size(), 3u);
  EXPECT_EQ(updated->code_revision, "9f1c2ab");
  // An unregistered version starts empty.
  auto fresh = registry->Update(
      "rank", 1, [](VersionMetadata& m) { m.description = "baseline"; }, alice_);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->registered_by, "alice");
  EXPECT_NE(fresh->created, absl::InfinitePast());
  auto missing = registry->Update(
      "rank", 9, [](VersionMetadata&) {}, alice_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr((root_ / "rank" / "9").string()));
}

TEST_F(RegistryTest, ListShowsVersionsOnDiskAndRegistered) {
  auto registry = Open();
  ASSERT_TRUE(registry->Register("rank", FullMetadata(2), alice_).ok());
  ASSERT_TRUE(registry->Promote("rank", 2, alice_).ok());
  ASSERT_TRUE(registry->SetAlias("rank", "staging", 2, alice_).ok());
  fs::remove_all(root_ / "rank" / "2");            // registered, then deleted from disk
  fs::create_directories(root_ / "rank" / "010");  // not a version folder
  std::ofstream(root_ / "rank" / "4");             // a file, not a folder

  auto info = registry->List("rank");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->versions.size(), 3u);
  EXPECT_EQ(info->versions[0].version, 1);
  EXPECT_TRUE(info->versions[0].on_disk);
  EXPECT_FALSE(info->versions[0].registered);
  EXPECT_EQ(info->versions[1].version, 2);
  EXPECT_FALSE(info->versions[1].on_disk);
  EXPECT_TRUE(info->versions[1].registered);
  EXPECT_THAT(info->versions[1].aliases, ElementsAre("production", "staging"));
  EXPECT_EQ(info->versions[2].version, 3);

  auto all = registry->ListAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].model, "ads");
  EXPECT_EQ((*all)[1].model, "rank");
}

TEST_F(RegistryTest, AliasNamesAreValidated) {
  for (const char* good : {"production", "staging", "champion", "canary-2", "a_b", "v2"}) {
    EXPECT_TRUE(ValidateAliasName(good).ok()) << good;
  }
  for (const char* bad : {"", "3", "007", "Prod", "has space", "a/b", "x.y", "ünï"}) {
    EXPECT_FALSE(ValidateAliasName(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateAliasName(std::string(65, 'a')).ok());
  auto registry = Open();
  auto numeric = registry->SetAlias("rank", "42", 1, alice_);
  EXPECT_EQ(numeric.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(numeric.status().message(), HasSubstr("'42'"));
  auto missing = registry->SetAlias("rank", "production", 9, alice_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("model 'rank' alias 'production'"));
  EXPECT_FALSE(fs::exists(root_ / "rank" / ".flywheel" / "registry.json"));
}

TEST_F(RegistryTest, PromoteAndRollbackWalkTheChain) {
  auto registry = Open();
  ASSERT_TRUE(registry->Promote("rank", 1, alice_).ok());
  ASSERT_TRUE(registry->Promote("rank", 2, alice_).ok());
  auto third = registry->Promote("rank", 3, {"bob", "better auc"});
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->from, 2);
  EXPECT_EQ(third->to, 3);
  EXPECT_EQ(third->action, "promote");

  // Promoting the current target changes nothing (and adds no history).
  auto same = registry->Promote("rank", 3, alice_);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->from, 3);
  EXPECT_EQ(registry->List("rank")->history.size(), 3u);

  auto back = registry->Rollback("rank", {"carol", "p99 regression"});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->from, 3);
  EXPECT_EQ(back->to, 2);
  EXPECT_EQ(*registry->Resolve("rank", "production"), 2);
  back = registry->Rollback("rank", alice_);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->to, 1);
  auto none = registry->Rollback("rank", alice_);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none.status().message(), HasSubstr("alias 'production'"));
  EXPECT_THAT(none.status().message(), HasSubstr("registry.json"));

  // A promote after rollbacks stacks on the current target.
  ASSERT_TRUE(registry->Promote("rank", 3, alice_).ok());
  EXPECT_EQ(registry->Rollback("rank", alice_)->to, 1);

  const ModelInfo info = *registry->List("rank");
  ASSERT_EQ(info.history.size(), 7u);
  EXPECT_EQ(info.history[3].action, "rollback");
  EXPECT_EQ(info.history[3].by, "carol");
  EXPECT_EQ(info.history[3].note, "p99 regression");
  EXPECT_EQ(info.history[0].from, 0);

  // Another alias has its own chain.
  EXPECT_EQ(registry->Rollback("rank", alice_, "staging").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, RollbackRefusesAVersionGoneFromDisk) {
  auto registry = Open();
  ASSERT_TRUE(registry->Promote("rank", 1, alice_).ok());
  ASSERT_TRUE(registry->Promote("rank", 2, alice_).ok());
  fs::remove_all(root_ / "rank" / "1");
  auto back = registry->Rollback("rank", alice_);
  EXPECT_EQ(back.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(back.status().message(), HasSubstr("version 1 is gone from disk"));
  EXPECT_EQ(*registry->Resolve("rank", "production"), 2);
}

TEST_F(RegistryTest, RemoveAliasAndHistoryLimit) {
  auto registry = Open({.max_history = 3});
  for (int64_t v : {1, 2, 3, 1, 2}) ASSERT_TRUE(registry->Promote("rank", v, alice_).ok());
  EXPECT_EQ(registry->List("rank")->history.size(), 3u);
  // The rollback stack is not cut with the history.
  EXPECT_EQ(registry->Rollback("rank", alice_)->to, 1);
  EXPECT_EQ(registry->Rollback("rank", alice_)->to, 3);
  auto removed = registry->RemoveAlias("rank", "production", alice_);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->from, 3);
  EXPECT_EQ(removed->to, 0);
  EXPECT_EQ(registry->Resolve("rank", "production").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry->RemoveAlias("rank", "production", alice_).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, ResolveNumbersAndAliases) {
  auto registry = Open({.refresh_interval = absl::ZeroDuration()});
  EXPECT_EQ(*registry->Resolve("rank", "3"), 3);
  EXPECT_EQ(*registry->Resolve("rank", "12"), 12);  // numbers pass through
  auto unknown = registry->Resolve("rank", "production");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("model 'rank' has no alias 'production'"));
  EXPECT_EQ(registry->Resolve("rank", "Prod!").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry->Resolve("rank", "0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry->Resolve("../etc", "production").status().code(),
            absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(registry->SetAlias("rank", "champion", 2, alice_).ok());
  EXPECT_EQ(*registry->Resolve("rank", "champion"), 2);
  auto show = registry->Show("rank", "champion");
  ASSERT_TRUE(show.ok());
  EXPECT_EQ(show->version, 2);

  // Another process (here: another Registry) moves the alias; the file's new stamp is noticed.
  auto other = Open();
  ASSERT_TRUE(other->SetAlias("rank", "champion", 3, alice_).ok());
  EXPECT_EQ(*registry->Resolve("rank", "champion"), 3);
}

TEST_F(RegistryTest, ResolveServesTheCachedCopyWithinTheRefreshInterval) {
  auto registry = Open({.refresh_interval = absl::InfiniteDuration()});
  ASSERT_TRUE(registry->Promote("rank", 1, alice_).ok());
  EXPECT_EQ(*registry->Resolve("rank", "production"), 1);
  auto other = Open();
  ASSERT_TRUE(other->Promote("rank", 2, alice_).ok());
  EXPECT_EQ(*registry->Resolve("rank", "production"), 1);
  // Its own changes are seen at once.
  ASSERT_TRUE(registry->Promote("rank", 3, alice_).ok());
  EXPECT_EQ(*registry->Resolve("rank", "production"), 3);
  auto snapshot = registry->Snapshot("rank");
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ((*snapshot)->aliases.at("production").previous, (std::vector<int64_t>{1, 2}));
}

TEST_F(RegistryTest, ACrashBeforeTheRenameLeavesTheOldFile) {
  auto registry = Open();
  ASSERT_TRUE(registry->Promote("rank", 1, alice_).ok());
  const std::string before = ReadFile(root_ / "rank" / ".flywheel" / "registry.json");

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The writer dies with its temp file written and synced, before the rename.
    auto crashing = Registry::Open(root_.string(), {.before_rename = [] { ::_exit(3); }});
    if (crashing.ok()) (void)(*crashing)->Promote("rank", 2, alice_);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 3);

  EXPECT_EQ(ReadFile(root_ / "rank" / ".flywheel" / "registry.json"), before);
  EXPECT_EQ(TempFiles("rank").size(), 1u);
  auto fresh = Open();
  EXPECT_EQ(*fresh->Resolve("rank", "production"), 1);
  // The lock died with the writer; the next change goes through and clears the leftover.
  ASSERT_TRUE(fresh->Promote("rank", 3, alice_).ok());
  EXPECT_TRUE(TempFiles("rank").empty());
  EXPECT_EQ(*Open()->Resolve("rank", "production"), 3);
}

TEST_F(RegistryTest, ConcurrentUpdatesFromThreadsAreAllKept) {
  auto registry = Open();
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads share the Registry, half have their own.
      std::unique_ptr<Registry> own = t % 2 ? Open() : nullptr;
      Registry* r = own ? own.get() : registry.get();
      for (int i = 0; i < kEach; ++i) {
        auto updated = r->Update(
            "rank", 1, [&](VersionMetadata& m) { m.metrics[absl::StrCat("t", t, "_", i)] = i; },
            alice_);
        EXPECT_TRUE(updated.ok()) << updated.status();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(Open()->Show("rank", "1")->metadata.metrics.size(),
            static_cast<size_t>(kThreads * kEach));
}

TEST_F(RegistryTest, ConcurrentUpdatesFromProcessesAreAllKept) {
  constexpr int kProcesses = 3;
  constexpr int kEach = 20;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto registry = Registry::Open(root_.string());
      int failures = registry.ok() ? 0 : 1;
      for (int i = 0; registry.ok() && i < kEach; ++i) {
        auto updated = (*registry)->Update(
            "rank", 2, [&](VersionMetadata& m) { m.parameters[absl::StrCat(p, "_", i)] = "x"; },
            alice_);
        // Alias moves interleave with the metadata updates.
        auto moved = (*registry)->Promote("rank", 1 + (i + p) % 3, alice_);
        failures += !updated.ok() + !moved.ok();
      }
      ::_exit(failures == 0 ? 0 : 1);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto registry = Open();
  EXPECT_EQ(registry->Show("rank", "2")->metadata.parameters.size(),
            static_cast<size_t>(kProcesses * kEach));
  // Every promote that moved the alias is in the history, in a consistent chain.
  const ModelInfo info = *registry->List("rank");
  for (size_t i = 1; i < info.history.size(); ++i) {
    EXPECT_EQ(info.history[i].from, info.history[i - 1].to);
  }
}

TEST_F(RegistryTest, DamagedFilesAreReportedWithTheirPath) {
  auto registry = Open();
  const fs::path file = root_ / "rank" / ".flywheel" / "registry.json";
  fs::create_directories(file.parent_path());
  std::ofstream(file) << "{\"format\": \"flywheel.registry/1\", \"versions\": [";
  auto list = registry->List("rank");
  EXPECT_EQ(list.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(list.status().message(), HasSubstr(file.string()));
  // A write does not overwrite what it cannot read.
  EXPECT_FALSE(registry->Promote("rank", 1, alice_).ok());

  std::ofstream(file, std::ios::trunc)
      << "{\"format\": \"flywheel.registry/1\", \"versions\": [{\"version\": 1, \"colour\": 1}]}";
  list = registry->List("rank");
  EXPECT_THAT(list.status().message(), HasSubstr("$.versions[0]: unknown field 'colour'"));
  std::ofstream(file, std::ios::trunc) << "{\"format\": \"flywheel.registry/9\"}";
  EXPECT_THAT(registry->List("rank").status().message(), HasSubstr("flywheel.registry/9"));
}

TEST(RegistryFormatTest, EncodeDecodeRoundTrip) {
  ModelRecord record;
  record.model = "rank";
  record.versions[2] = FullMetadata(2);
  record.versions[5].version = 5;  // created unset, everything empty
  Alias alias;
  alias.version = 5;
  alias.previous = {1, 2};
  alias.updated = absl::FromUnixMicros(1714564802000001);
  alias.updated_by = "alice";
  record.aliases["production"] = alias;
  AliasChange change;
  change.time = absl::FromUnixMicros(1714564802000001);
  change.alias = "production";
  change.action = "promote";
  change.from = 2;
  change.to = 5;
  change.by = "alice";
  change.note = "ok";
  record.history.push_back(change);

  const std::string json = EncodeRecord(record);
  auto decoded = DecodeRecord(json, "mem");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->model, "rank");
  ExpectSameMetadata(decoded->versions.at(2), FullMetadata(2));
  EXPECT_EQ(decoded->versions.at(5).created, absl::InfinitePast());
  EXPECT_EQ(decoded->aliases.at("production").previous, alias.previous);
  EXPECT_EQ(decoded->aliases.at("production").updated, alias.updated);
  ASSERT_EQ(decoded->history.size(), 1u);
  EXPECT_EQ(decoded->history[0].time, change.time);
  EXPECT_EQ(decoded->history[0].note, "ok");
  EXPECT_EQ(EncodeRecord(*decoded), json);
}

TEST_F(RegistryTest, JsonViewsParseBack) {
  auto registry = Open();
  ASSERT_TRUE(registry->Register("rank", FullMetadata(2), alice_).ok());
  auto change = registry->Promote("rank", 2, alice_);
  ASSERT_TRUE(change.ok());
  for (bool pretty : {false, true}) {
    rapidjson::Document list;
    list.Parse(ModelListJson(*registry->ListAll(), pretty).c_str());
    ASSERT_FALSE(list.HasParseError());
    const auto& rank = list["models"][1];
    EXPECT_STREQ(rank["model"].GetString(), "rank");
    EXPECT_EQ(rank["versions"].Size(), 3u);
    EXPECT_TRUE(rank["versions"][0]["metadata"].IsNull());
    EXPECT_DOUBLE_EQ(rank["versions"][1]["metadata"]["metrics"]["auc"].GetDouble(), 0.8125);
    EXPECT_EQ(rank["aliases"]["production"]["version"].GetInt64(), 2);

    rapidjson::Document version;
    version.Parse(VersionInfoJson("rank", *registry->Show("rank", "production"), pretty).c_str());
    ASSERT_FALSE(version.HasParseError());
    EXPECT_STREQ(version["metadata"]["created"].GetString(), "2024-05-01T12:00:01.500000Z");
    EXPECT_STREQ(version["aliases"][0].GetString(), "production");

    rapidjson::Document moved;
    moved.Parse(AliasChangeJson("rank", *change, pretty).c_str());
    ASSERT_FALSE(moved.HasParseError());
    EXPECT_EQ(moved["change"]["to"].GetInt64(), 2);
    EXPECT_STREQ(moved["change"]["action"].GetString(), "promote");
  }
}

}  // namespace
}  // namespace flywheel::lifecycle
