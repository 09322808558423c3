// The point-in-time join: events replayed in event-time order into the same tiles the online
// path keeps, each spine row evaluated just before the first event later than its time.
#include "features/export.h"

#include <algorithm>
#include <memory>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "features/aggregation.h"
#include "features/event_parse.h"
#include "features/tiles.h"

namespace flywheel::features {
namespace {

struct JoinView {
  int view = -1;
  std::unique_ptr<ViewLayout> layout;
  absl::flat_hash_map<std::string, ViewState> states;
  std::vector<std::string> row_keys;  // per spine row; empty when the row lacks a key
};

absl::Status ParseEvent(const EventParser& parser, const ExportEvent& event,
                        rapidjson::Document* doc, ParsedEvents* parsed) {
  doc->Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseIterativeFlag>(
      event.json.data(), event.json.size());
  if (doc->HasParseError()) return absl::InvalidArgumentError("not JSON");
  parsed->Clear();
  if (!parser.ParseJsonEvent(*doc, 0, parsed, nullptr)) {
    return absl::InvalidArgumentError("malformed");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::vector<FeatureValue>>> PointInTimeJoin(
    const FeatureRegistry& registry, absl::Span<const SpineRow> rows,
    absl::Span<const std::string> features, const ExportEventStream& events, ExportStats* stats) {
  ExportStats local_stats;
  if (stats == nullptr) stats = &local_stats;
  // The requested views, and for each column its view slot and feature.
  std::vector<JoinView> views;
  std::vector<std::pair<int, int>> columns;
  for (const std::string& ref_text : features) {
    absl::StatusOr<FeatureRef> ref = registry.Resolve(ref_text);
    if (!ref.ok()) return absl::InvalidArgumentError(ref.status().message());
    auto it = std::find_if(views.begin(), views.end(),
                           [&](const JoinView& v) { return v.view == ref->view; });
    if (it == views.end()) {
      const ViewDef& def = registry.views()[ref->view];
      JoinView view;
      view.view = ref->view;
      view.layout = std::make_unique<ViewLayout>(def, registry.sources()[def.source_index]);
      views.push_back(std::move(view));
      it = views.end() - 1;
    }
    columns.emplace_back(static_cast<int>(it - views.begin()), ref->feature);
  }
  // Each row's entity key in each view.
  std::vector<absl::string_view> parts;
  for (JoinView& view : views) {
    const EntityDef& entity = registry.entities()[registry.views()[view.view].entity_index];
    view.row_keys.resize(rows.size());
    for (size_t r = 0; r < rows.size(); ++r) {
      parts.clear();
      for (const std::string& field : entity.keys) {
        for (const auto& [name, value] : rows[r].keys) {
          if (name == field) {
            parts.push_back(value);
            break;
          }
        }
      }
      if (parts.size() != entity.keys.size() ||
          !EntityKeyFromParts(parts, &view.row_keys[r]).ok()) {
        view.row_keys[r].clear();
      }
    }
  }
  // Per source: a parser and the requested views it feeds.
  std::vector<std::unique_ptr<EventParser>> parsers(registry.sources().size());
  std::vector<std::vector<int>> source_views(registry.sources().size());
  for (size_t slot = 0; slot < views.size(); ++slot) {
    int source = registry.views()[views[slot].view].source_index;
    source_views[source].push_back(static_cast<int>(slot));
    if (!parsers[source])
      parsers[source] = std::make_unique<EventParser>(registry.sources()[source]);
  }

  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rows[a].time < rows[b].time; });
  std::vector<std::vector<FeatureValue>> out(rows.size(),
                                             std::vector<FeatureValue>(features.size()));
  auto evaluate = [&](size_t r) {
    int64_t t = absl::ToUnixNanos(rows[r].time);
    for (size_t c = 0; c < columns.size(); ++c) {
      JoinView& view = views[columns[c].first];
      const std::string& key = view.row_keys[r];
      if (key.empty()) {
        out[r][c].status = FeatureStatus::kMissingKey;
        continue;
      }
      auto it = view.states.find(key);
      if (it != view.states.end()) {
        out[r][c] = EvaluateFeature(*view.layout, it->second, columns[c].second, t);
      }
    }
  };

  size_t next_row = 0;
  int64_t last_us = std::numeric_limits<int64_t>::min();
  ExportEvent event;
  rapidjson::Document doc;
  ParsedEvents parsed;
  std::string key;
  while (true) {
    absl::StatusOr<bool> more = events(&event);
    if (!more.ok()) return more.status();
    if (!*more) break;
    ++stats->events;
    int source = registry.SourceIndex(event.source);
    if (source < 0) {
      ++stats->unknown_source;
      continue;
    }
    if (source_views[source].empty()) continue;
    if (!ParseEvent(*parsers[source], event, &doc, &parsed).ok()) {
      ++stats->invalid;
      continue;
    }
    int64_t ts = parsed.times[0];
    int64_t us = FloorDiv(ts, 1000);
    if (us < last_us) {
      return absl::FailedPreconditionError(absl::StrCat(
          "export: event ", stats->events - 1, " of source '", event.source, "' at ",
          absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(ts), absl::UTCTimeZone()),
          " comes after a later event: events must be in event-time order"));
    }
    last_us = us;
    while (next_row < order.size() && absl::ToUnixNanos(rows[order[next_row]].time) < ts) {
      evaluate(order[next_row++]);
    }
    const SourceDef& src = registry.sources()[source];
    for (int slot : source_views[source]) {
      JoinView& view = views[slot];
      key.clear();
      AppendEntityKey(parsed, 0, src, registry.views()[view.view], &key);
      auto it = view.states.find(key);
      if (it == view.states.end()) {
        it = view.states.emplace(key, ViewState()).first;
        view.layout->Init(&it->second);
      }
      view.layout->Add(it->second, ts, parsed.values.data());
    }
    ++stats->applied;
  }
  while (next_row < order.size()) evaluate(order[next_row++]);
  for (const JoinView& view : views) stats->entities += view.states.size();
  return out;
}

absl::StatusOr<std::vector<std::vector<FeatureValue>>> PointInTimeJoin(
    const FeatureRegistry& registry, absl::Span<const SpineRow> rows,
    absl::Span<const std::string> features, absl::Span<const ExportEvent> events,
    ExportStats* stats) {
  // Event times first, so the events can be streamed in time order.
  std::vector<std::unique_ptr<EventParser>> parsers(registry.sources().size());
  std::vector<int64_t> times(events.size(), -1);  // malformed ones first: they are skipped
  rapidjson::Document doc;
  ParsedEvents parsed;
  for (size_t i = 0; i < events.size(); ++i) {
    int source = registry.SourceIndex(events[i].source);
    if (source < 0) continue;
    if (!parsers[source])
      parsers[source] = std::make_unique<EventParser>(registry.sources()[source]);
    if (ParseEvent(*parsers[source], events[i], &doc, &parsed).ok()) times[i] = parsed.times[0];
  }
  std::vector<size_t> order(events.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return times[a] < times[b]; });
  size_t next = 0;
  ExportEventStream stream = [&](ExportEvent* event) -> absl::StatusOr<bool> {
    if (next == order.size()) return false;
    *event = events[order[next++]];
    return true;
  };
  return PointInTimeJoin(registry, rows, features, stream, stats);
}

}  // namespace flywheel::features
