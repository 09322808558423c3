#include "serving/repository.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace flywheel::serving {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A fresh folder per test, removed afterwards.
class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "fw_repo_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    repo_ = root_ / "repo";
    fs::create_directories(repo_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static void Write(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
  }

  ModelLocation Location(const std::string& name) {
    auto found = ScanRepositories({repo_.string()});
    EXPECT_TRUE(found.ok()) << found.status();
    if (!found.ok() || found->count(name) == 0) return ModelLocation{name, repo_, repo_ / name, ""};
    return found->at(name);
  }

  static std::vector<int64_t> Versions(const std::vector<ModelVersionDir>& dirs) {
    std::vector<int64_t> out;
    for (const auto& d : dirs) out.push_back(d.version);
    return out;
  }

  fs::path root_;
  fs::path repo_;
};

TEST(ValidateModelName, AcceptsFolderNamesOnly) {
  EXPECT_TRUE(ValidateModelName("resnet50").ok());
  EXPECT_TRUE(ValidateModelName("my model-v2.onnx_1").ok());
  EXPECT_TRUE(ValidateModelName("modèle").ok());
  EXPECT_FALSE(ValidateModelName("").ok());
  EXPECT_FALSE(ValidateModelName(".").ok());
  EXPECT_FALSE(ValidateModelName("..").ok());
  EXPECT_FALSE(ValidateModelName(".hidden").ok());
  EXPECT_FALSE(ValidateModelName("a/b").ok());
  EXPECT_FALSE(ValidateModelName("../etc").ok());
  EXPECT_FALSE(ValidateModelName("a\\b").ok());
  EXPECT_FALSE(ValidateModelName(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateModelName("tab\there").ok());
  EXPECT_FALSE(ValidateModelName(std::string(256, 'a')).ok());
  EXPECT_TRUE(ValidateModelName(std::string(255, 'a')).ok());
  EXPECT_THAT(ValidateModelName("a\nb").message(),
              AllOf(HasSubstr("'a\\nb'"), HasSubstr("control character")));
}

TEST(ParseVersionFolder, PositiveIntegersWithoutLeadingZeros) {
  EXPECT_EQ(*ParseVersionFolder("1"), 1);
  EXPECT_EQ(*ParseVersionFolder("20240101"), 20240101);
  for (const char* bad :
       {"", "0", "01", "-1", "+1", "1a", "v1", " 1", "1.0", "9999999999999999999999"}) {
    EXPECT_FALSE(ParseVersionFolder(bad).ok()) << bad;
  }
}

TEST_F(RepositoryTest, ScanFindsModelFoldersOnly) {
  fs::create_directories(repo_ / "a" / "1");
  fs::create_directories(repo_ / "b");
  fs::create_directories(repo_ / ".git");
  Write(repo_ / "README.md", "not a model");
  auto found = ScanRepositories({repo_.string()});
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 2u);
  const ModelLocation& a = found->at("a");
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.repository, repo_.string());
  EXPECT_EQ(a.path, fs::canonical(repo_ / "a").string());
  EXPECT_THAT(a.error, IsEmpty());
}

TEST_F(RepositoryTest, MissingRepositoryFailsTheScan) {
  auto found = ScanRepositories({(root_ / "nope").string()});
  ASSERT_FALSE(found.ok());
  EXPECT_THAT(found.status().message(), HasSubstr("nope"));
  Write(root_ / "file", "x");
  EXPECT_FALSE(ScanRepositories({(root_ / "file").string()}).ok());
}

TEST_F(RepositoryTest, SameModelInTwoRepositoriesIsAnErrorForThatModel) {
  const fs::path other = root_ / "other";
  fs::create_directories(repo_ / "dup");
  fs::create_directories(other / "dup");
  fs::create_directories(other / "solo");
  auto found = ScanRepositories({repo_.string(), other.string()});
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->at("dup").error, AllOf(HasSubstr("model 'dup' is in more than one repository"),
                                            HasSubstr(repo_.string()), HasSubstr(other.string())));
  EXPECT_THAT(found->at("solo").error, IsEmpty());
  EXPECT_FALSE(ReadModelConfig(found->at("dup")).ok());
  EXPECT_FALSE(SelectVersions(found->at("dup"), {}).ok());
}

TEST_F(RepositoryTest, SymlinksMustStayInsideTheRepository) {
  const fs::path outside = root_ / "outside" / "stolen";
  fs::create_directories(outside / "1");
  Write(outside / "1" / "model.onnx", "x");
  fs::create_directory_symlink(outside, repo_ / "escape");
  fs::create_directories(repo_ / "real" / "1");
  fs::create_directory_symlink(repo_ / "real", repo_ / "alias");
  auto found = ScanRepositories({repo_.string()});
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->at("escape").error, HasSubstr("outside the model repository"));
  EXPECT_THAT(found->at("alias").error, IsEmpty());
  EXPECT_EQ(found->at("alias").path, fs::canonical(repo_ / "real").string());

  // A config.pbtxt, a version folder or a model file that points out of the repository.
  Write(root_ / "secret.pbtxt", "name: \"x\"");
  fs::create_directories(repo_ / "m");
  fs::create_symlink(root_ / "secret.pbtxt", repo_ / "m" / "config.pbtxt");
  auto config = ReadModelConfig(Location("m"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kPermissionDenied);

  fs::create_directories(repo_ / "v");
  fs::create_directory_symlink(outside / "1", repo_ / "v" / "1");
  inference::ModelConfig onnx;
  onnx.set_platform("onnxruntime_onnx");
  auto versions = SelectVersions(Location("v"), onnx);
  ASSERT_FALSE(versions.ok());
  EXPECT_THAT(versions.status().message(), HasSubstr("outside the model repository"));

  fs::create_directories(repo_ / "f" / "1");
  fs::create_symlink(outside / "1" / "model.onnx", repo_ / "f" / "1" / "model.onnx");
  versions = SelectVersions(Location("f"), onnx);
  ASSERT_FALSE(versions.ok());
  EXPECT_EQ(versions.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(RepositoryTest, InvalidFolderNamesAreReported) {
  fs::create_directories(repo_ / "bad\x01name");
  auto found = ScanRepositories({repo_.string()});
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_THAT(found->begin()->second.error, HasSubstr("control character"));
}

TEST_F(RepositoryTest, MissingConfigIsCompletedFromTheFiles) {
  Write(repo_ / "onnx" / "1" / "model.onnx", "x");
  auto config = ReadModelConfig(Location("onnx"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name(), "onnx");
  EXPECT_EQ(config->platform(), "onnxruntime_onnx");
  EXPECT_EQ(config->backend(), "onnxruntime");

  Write(repo_ / "trees" / "2" / "xgboost.ubj", "x");
  config = ReadModelConfig(Location("trees"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->backend(), "fil");
  EXPECT_EQ(config->parameters().at("model_type").string_value(), "xgboost_ubj");

  Write(repo_ / "trees2" / "config.pbtxt", "backend: \"fil\" max_batch_size: 8");
  Write(repo_ / "trees2" / "1" / "model.json", "{}");
  config = ReadModelConfig(Location("trees2"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->parameters().at("model_type").string_value(), "xgboost_json");

  Write(repo_ / "custom" / "config.pbtxt", "default_model_filename: \"net.onnx\"");
  Write(repo_ / "custom" / "1" / "net.onnx", "x");
  config = ReadModelConfig(Location("custom"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->platform(), "onnxruntime_onnx");

  fs::create_directories(repo_ / "empty" / "1");
  config = ReadModelConfig(Location("empty"));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("config.pbtxt"), HasSubstr("neither platform nor backend")));
}

TEST_F(RepositoryTest, ConfigErrorsNameTheFile) {
  Write(repo_ / "a" / "config.pbtxt", "name: \"b\" platform: \"onnxruntime_onnx\"");
  auto config = ReadModelConfig(Location("a"));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("a/config.pbtxt: name: 'b' does not match the model folder 'a'")));

  Write(repo_ / "p" / "config.pbtxt", "platform: \"onnxruntime_onnx\"\nmax_batch: 3\n");
  config = ReadModelConfig(Location("p"));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("p/config.pbtxt:2:"), HasSubstr("max_batch")));

  Write(repo_ / "w" / "config.pbtxt",
        "platform: \"onnxruntime_onnx\" optimization { graph { level: 1 } }");
  std::vector<std::string> warnings;
  config = ReadModelConfig(Location("w"), &warnings);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], AllOf(HasSubstr("w/config.pbtxt"), HasSubstr("graph.level")));

  Write(repo_ / "big" / "config.pbtxt", std::string(kMaxConfigBytes + 1, ' '));
  config = ReadModelConfig(Location("big"));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("too large"));

  fs::create_directories(repo_ / "dir" / "config.pbtxt");
  config = ReadModelConfig(Location("dir"));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("not a regular file"));
}

TEST_F(RepositoryTest, PrepareModelConfigForTheLoadApi) {
  Write(repo_ / "m" / "1" / "model.onnx", "x");
  inference::ModelConfig json_config;
  json_config.set_max_batch_size(-3);
  auto config = PrepareModelConfig(Location("m"), json_config, "load request config");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              HasSubstr("load request config: max_batch_size: -3 is negative"));
  json_config.set_max_batch_size(2);
  config = PrepareModelConfig(Location("m"), json_config, "load request config");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name(), "m");
  EXPECT_EQ(config->platform(), "onnxruntime_onnx");
}

TEST_F(RepositoryTest, VersionPolicies) {
  for (const char* v : {"1", "2", "3", "10"}) Write(repo_ / "m" / v / "model.onnx", v);
  fs::create_directories(repo_ / "m" / "0");
  fs::create_directories(repo_ / "m" / "07");
  fs::create_directories(repo_ / "m" / "latest");
  Write(repo_ / "m" / "5", "a file, not a version folder");
  const ModelLocation location = Location("m");

  inference::ModelConfig config;
  config.set_platform("onnxruntime_onnx");
  auto dirs = SelectVersions(location, config);
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_THAT(Versions(*dirs), ElementsAre(10));
  EXPECT_EQ((*dirs)[0].model_file, fs::canonical(repo_ / "m" / "10" / "model.onnx").string());
  EXPECT_EQ((*dirs)[0].path, fs::canonical(repo_ / "m" / "10").string());

  config.mutable_version_policy()->mutable_latest()->set_num_versions(3);
  EXPECT_THAT(Versions(*SelectVersions(location, config)), ElementsAre(2, 3, 10));
  config.mutable_version_policy()->mutable_latest()->set_num_versions(100);
  EXPECT_THAT(Versions(*SelectVersions(location, config)), ElementsAre(1, 2, 3, 10));
  config.mutable_version_policy()->mutable_all();
  EXPECT_THAT(Versions(*SelectVersions(location, config)), ElementsAre(1, 2, 3, 10));
  config.mutable_version_policy()->mutable_specific()->add_versions(3);
  config.mutable_version_policy()->mutable_specific()->add_versions(1);
  EXPECT_THAT(Versions(*SelectVersions(location, config)), ElementsAre(1, 3));
  config.mutable_version_policy()->mutable_specific()->add_versions(4);
  dirs = SelectVersions(location, config);
  ASSERT_FALSE(dirs.ok());
  EXPECT_EQ(dirs.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(dirs.status().message(), AllOf(HasSubstr("model 'm'"), HasSubstr("version 4"),
                                             HasSubstr("versions found: 1, 2, 3, 10")));
}

TEST_F(RepositoryTest, ModelFiles) {
  fs::create_directories(repo_ / "none");
  inference::ModelConfig onnx;
  onnx.set_platform("onnxruntime_onnx");
  auto dirs = SelectVersions(Location("none"), onnx);
  ASSERT_FALSE(dirs.ok());
  EXPECT_THAT(dirs.status().message(), HasSubstr("no version folder"));

  fs::create_directories(repo_ / "nofile" / "1");
  dirs = SelectVersions(Location("nofile"), onnx);
  ASSERT_FALSE(dirs.ok());
  EXPECT_THAT(dirs.status().message(),
              AllOf(HasSubstr("model 'nofile' version 1: no model file"), HasSubstr("model.onnx")));

  Write(repo_ / "named" / "2" / "ranker.onnx", "x");
  inference::ModelConfig named = onnx;
  named.set_default_model_filename("ranker.onnx");
  dirs = SelectVersions(Location("named"), named);
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_THAT((*dirs)[0].model_file, HasSubstr("ranker.onnx"));

  Write(repo_ / "fil" / "1" / "xgboost.json", "{}");
  Write(repo_ / "fil" / "2" / "model.ubj", "x");
  inference::ModelConfig fil;
  fil.set_backend("fil");
  (*fil.mutable_parameters())["model_type"].set_string_value("xgboost_json");
  fil.mutable_version_policy()->mutable_specific()->add_versions(1);
  dirs = SelectVersions(Location("fil"), fil);
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_THAT((*dirs)[0].model_file, HasSubstr("xgboost.json"));
  (*fil.mutable_parameters())["model_type"].set_string_value("xgboost_ubj");
  fil.mutable_version_policy()->mutable_latest()->set_num_versions(1);
  dirs = SelectVersions(Location("fil"), fil);
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_THAT((*dirs)[0].model_file, HasSubstr("model.ubj"));

  inference::ModelConfig unknown;
  unknown.set_backend("python");
  Write(repo_ / "py" / "1" / "model.py", "x");
  dirs = SelectVersions(Location("py"), unknown);
  ASSERT_FALSE(dirs.ok());
  EXPECT_THAT(dirs.status().message(), HasSubstr("default_model_filename"));
}

TEST_F(RepositoryTest, FingerprintChangesWithTheFiles) {
  Write(repo_ / "m" / "config.pbtxt", "platform: \"onnxruntime_onnx\"");
  Write(repo_ / "m" / "1" / "model.onnx", "one");
  const ModelLocation location = Location("m");
  const std::string first = Fingerprint(location);
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(Fingerprint(location), first);

  // A new version folder.
  Write(repo_ / "m" / "2" / "model.onnx", "two");
  const std::string second = Fingerprint(location);
  EXPECT_NE(second, first);

  // A model file rewritten with another size, or only touched.
  Write(repo_ / "m" / "2" / "model.onnx", "two!");
  const std::string third = Fingerprint(location);
  EXPECT_NE(third, second);
  fs::last_write_time(repo_ / "m" / "config.pbtxt",
                      fs::last_write_time(repo_ / "m" / "config.pbtxt") + std::chrono::seconds(5));
  EXPECT_NE(Fingerprint(location), third);

  // Folders that are not versions do not matter.
  const std::string before = Fingerprint(location);
  fs::create_directories(repo_ / "m" / "notes");
  Write(repo_ / "m" / "notes" / "a.txt", "x");
  EXPECT_EQ(Fingerprint(location), before);

  // Removing a version.
  fs::remove_all(repo_ / "m" / "1");
  EXPECT_NE(Fingerprint(location), before);

  ModelLocation broken = location;
  broken.error = "in two repositories";
  EXPECT_THAT(Fingerprint(broken), HasSubstr("in two repositories"));
}

}  // namespace
}  // namespace flywheel::serving
