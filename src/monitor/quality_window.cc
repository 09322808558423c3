// QualityWindow: rolling (prediction, label) pairs and the metrics over them; reports as JSON
// and Prometheus gauges.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "monitor/quality.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::monitor {
namespace {

// Probabilities are clipped this far from 0 and 1 in log-loss, as is customary.
constexpr double kLogLossEps = 1e-15;

bool IsClassIndex(double label, size_t classes) {
  return label >= 0 && label == std::floor(label) && label < static_cast<double>(classes);
}

// Class probabilities of a prediction row: the row itself when it is a distribution, else its
// softmax (scores or logits).
std::vector<double> Probabilities(const Prediction& p) {
  std::vector<double> out(p.begin(), p.end());
  double sum = 0;
  bool distribution = true;
  for (double v : out) {
    distribution = distribution && v >= 0 && v <= 1;
    sum += v;
  }
  if (distribution && std::fabs(sum - 1.0) <= 1e-3) return out;
  const double top = *std::max_element(out.begin(), out.end());
  double total = 0;
  for (double& v : out) total += (v = std::exp(v - top));
  for (double& v : out) v /= total;
  return out;
}

// P(class 1) of a binary prediction: the second of two class scores, or a single score, which is
// a logit when `logits`.
double BinaryScore(const Prediction& p, bool logits) {
  if (p.size() >= 2) return Probabilities(p)[1];
  const double v = p[0];
  return logits ? 1.0 / (1.0 + std::exp(-v)) : v;
}

// The Mann-Whitney form of the area under the ROC curve, ties sharing their mean rank.
std::optional<double> Auc(std::vector<std::pair<double, bool>> scored) {
  std::sort(scored.begin(), scored.end());
  double positive_rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < scored.size();) {
    size_t j = i;
    while (j < scored.size() && scored[j].first == scored[i].first) ++j;
    const double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (scored[k].second) {
        positive_rank_sum += mean_rank;
        ++positives;
      }
    }
    i = j;
  }
  const int64_t negatives = static_cast<int64_t>(scored.size()) - positives;
  if (positives == 0 || negatives == 0) return std::nullopt;
  const double p = static_cast<double>(positives);
  return (positive_rank_sum - p * (p + 1) / 2.0) / (p * static_cast<double>(negatives));
}

}  // namespace

QualityWindow::QualityWindow(std::string model, std::string version, TaskKind task,
                             int64_t capacity)
    : model_(std::move(model)),
      version_(std::move(version)),
      task_(task),
      capacity_(static_cast<size_t>(std::max<int64_t>(capacity, 1))) {}

bool QualityWindow::Add(const Prediction& prediction, double label) {
  bool valid = std::isfinite(label) && !prediction.empty();
  if (valid) {
    switch (task_) {
      case TaskKind::kBinary:
        valid = label == 0 || label == 1;
        break;
      case TaskKind::kMulticlass:
        valid = IsClassIndex(label, prediction.size());
        break;
      case TaskKind::kRegression:
        break;
      case TaskKind::kAuto:
        if (prediction.size() >= 2) valid = IsClassIndex(label, prediction.size());
        break;
    }
  }
  absl::MutexLock lock(&mu_);
  if (!valid) {
    ++invalid_;
    return false;
  }
  if (pairs_.size() < capacity_) {
    pairs_.push_back({prediction, label});
  } else {
    pairs_[next_].prediction = prediction;
    pairs_[next_].label = label;
  }
  next_ = (next_ + 1) % capacity_;
  ++joined_;
  return true;
}

int64_t QualityWindow::joined() const {
  absl::MutexLock lock(&mu_);
  return joined_;
}

QualityReport QualityWindow::Compute() const {
  QualityReport r;
  r.model = model_;
  r.version = version_;
  r.task = task_;
  std::vector<Pair> pairs;
  size_t width = 0;
  {
    absl::MutexLock lock(&mu_);
    pairs = pairs_;
    r.joined_total = joined_;
    r.invalid_labels = invalid_;
    if (!pairs_.empty()) width = pairs_[(next_ == 0 ? pairs_.size() : next_) - 1].prediction.size();
  }
  if (pairs.empty()) return r;
  // Pairs whose prediction width differs from the latest one's (a model that changed its
  // output) take no part.
  pairs.erase(std::remove_if(pairs.begin(), pairs.end(),
                             [&](const Pair& p) { return p.prediction.size() != width; }),
              pairs.end());
  TaskKind task = task_;
  if (task == TaskKind::kAuto) {
    if (width >= 3) {
      task = TaskKind::kMulticlass;
    } else if (width == 2) {
      task = TaskKind::kBinary;
    } else {
      const bool binary = std::all_of(pairs.begin(), pairs.end(), [](const Pair& p) {
        return (p.label == 0 || p.label == 1) && p.prediction[0] >= 0 && p.prediction[0] <= 1;
      });
      task = binary ? TaskKind::kBinary : TaskKind::kRegression;
    }
  }
  r.resolved = task;
  r.pairs = static_cast<int64_t>(pairs.size());
  const double n = static_cast<double>(pairs.size());
  double label_sum = 0;
  for (const Pair& p : pairs) label_sum += p.label;
  r.label_mean = label_sum / n;
  if (task == TaskKind::kRegression) {
    double abs_sum = 0, sq_sum = 0, pred_sum = 0;
    for (const Pair& p : pairs) {
      const double e = static_cast<double>(p.prediction[0]) - p.label;
      abs_sum += std::fabs(e);
      sq_sum += e * e;
      pred_sum += p.prediction[0];
    }
    r.mae = abs_sum / n;
    r.rmse = std::sqrt(sq_sum / n);
    r.prediction_mean = pred_sum / n;
    return r;
  }
  if (task == TaskKind::kBinary) {
    // Single scores are probabilities, unless one of them cannot be: then they are all logits.
    const bool logits = std::any_of(pairs.begin(), pairs.end(), [](const Pair& p) {
      return p.prediction.size() == 1 && !(p.prediction[0] >= 0 && p.prediction[0] <= 1);
    });
    double correct = 0, loss = 0, score_sum = 0;
    std::vector<std::pair<double, bool>> scored;
    scored.reserve(pairs.size());
    for (const Pair& p : pairs) {
      const double s = BinaryScore(p.prediction, logits);
      const bool positive = p.label == 1;
      const double clipped = std::clamp(s, kLogLossEps, 1 - kLogLossEps);
      correct += (s >= 0.5) == positive;
      loss -= positive ? std::log(clipped) : std::log(1 - clipped);
      score_sum += s;
      scored.emplace_back(s, positive);
    }
    r.accuracy = correct / n;
    r.log_loss = loss / n;
    r.prediction_mean = score_sum / n;
    r.auc = Auc(std::move(scored));
    return r;
  }
  double correct = 0, loss = 0;
  for (const Pair& p : pairs) {
    const std::vector<double> probs = Probabilities(p.prediction);
    const size_t predicted = std::max_element(probs.begin(), probs.end()) - probs.begin();
    const size_t label = static_cast<size_t>(p.label);
    correct += predicted == label;
    loss -= std::log(std::clamp(probs[label], kLogLossEps, 1.0));
  }
  r.accuracy = correct / n;
  r.log_loss = loss / n;
  return r;
}

namespace {

namespace rj = rapidjson;
using Writer = rj::Writer<rj::StringBuffer>;

void Key(Writer& w, absl::string_view s) { w.Key(s.data(), static_cast<rj::SizeType>(s.size())); }
void Str(Writer& w, absl::string_view s) {
  w.String(s.data(), static_cast<rj::SizeType>(s.size()));
}
void Opt(Writer& w, absl::string_view key, const std::optional<double>& v) {
  Key(w, key);
  if (v.has_value() && std::isfinite(*v)) {
    w.Double(*v);
  } else {
    w.Null();
  }
}

}  // namespace

std::string QualityReportToJson(const QualityReport& r) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Key(w, "model");
  Str(w, r.model);
  Key(w, "version");
  Str(w, r.version);
  Key(w, "task");
  Str(w, TaskKindName(r.task));
  Key(w, "resolved_task");
  if (r.pairs > 0) {
    Str(w, TaskKindName(r.resolved));
  } else {
    w.Null();
  }
  Key(w, "pairs");
  w.Int64(r.pairs);
  Key(w, "joined_total");
  w.Int64(r.joined_total);
  Key(w, "invalid_labels");
  w.Int64(r.invalid_labels);
  Opt(w, "accuracy", r.accuracy);
  Opt(w, "log_loss", r.log_loss);
  Opt(w, "auc", r.auc);
  Opt(w, "mae", r.mae);
  Opt(w, "rmse", r.rmse);
  Opt(w, "prediction_mean", r.prediction_mean);
  Opt(w, "label_mean", r.label_mean);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string LabelCountsToJson(const LabelCounts& c) {
  rj::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Key(w, "predictions");
  w.Int64(c.predictions);
  Key(w, "pending");
  w.Int64(c.pending);
  Key(w, "dropped");
  w.Int64(c.dropped);
  Key(w, "labels");
  w.StartObject();
  for (auto [outcome, value] :
       {std::pair{LabelOutcome::kJoined, c.joined}, std::pair{LabelOutcome::kUnknown, c.unknown},
        std::pair{LabelOutcome::kExpired, c.expired},
        std::pair{LabelOutcome::kDuplicate, c.duplicate},
        std::pair{LabelOutcome::kInvalid, c.invalid}}) {
    Key(w, LabelOutcomeName(outcome));
    w.Int64(value);
  }
  w.EndObject();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void AppendQualityMetrics(const QualityReport& r, SampleWriter& writer) {
  const Labels labels = {{"model", r.model}, {"version", r.version}};
  writer.Add("flywheel_model_quality_pairs",
             "Joined (prediction, label) pairs in the quality window", "gauge", labels,
             static_cast<double>(r.pairs));
  auto gauge = [&](const char* name, const char* help, const std::optional<double>& v) {
    if (v.has_value() && std::isfinite(*v)) writer.Add(name, help, "gauge", labels, *v);
  };
  gauge("flywheel_model_accuracy", "Accuracy over the quality window", r.accuracy);
  gauge("flywheel_model_log_loss", "Log-loss over the quality window", r.log_loss);
  gauge("flywheel_model_auc", "ROC AUC over the quality window (binary classifiers)", r.auc);
  gauge("flywheel_model_mae", "Mean absolute error over the quality window", r.mae);
  gauge("flywheel_model_rmse", "Root mean squared error over the quality window", r.rmse);
}

}  // namespace flywheel::monitor
