#include "engine/graph.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flywheel::engine {

int64_t Node::GetInt(absl::string_view name, int64_t def) const {
  auto it = attributes.find(name);
  return it == attributes.end() ? def : it->second.i;
}

float Node::GetFloat(absl::string_view name, float def) const {
  auto it = attributes.find(name);
  return it == attributes.end() ? def : it->second.f;
}

std::string Node::GetString(absl::string_view name, absl::string_view def) const {
  auto it = attributes.find(name);
  return it == attributes.end() ? std::string(def) : it->second.s;
}

std::vector<int64_t> Node::GetInts(absl::string_view name) const {
  auto it = attributes.find(name);
  return it == attributes.end() ? std::vector<int64_t>{} : it->second.ints;
}

std::vector<float> Node::GetFloats(absl::string_view name) const {
  auto it = attributes.find(name);
  return it == attributes.end() ? std::vector<float>{} : it->second.floats;
}

const Tensor* Node::GetTensor(absl::string_view name) const {
  auto it = attributes.find(name);
  return it == attributes.end() || it->second.kind != Attribute::Kind::kTensor ? nullptr
                                                                               : &it->second.t;
}

std::string Node::Describe() const { return absl::StrCat("node '", name, "' (", op_type, ")"); }

int Graph::AddValue(Value value) {
  int id = static_cast<int>(values.size());
  index_[value.name] = id;
  values.push_back(std::move(value));
  return id;
}

int Graph::FindValue(absl::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

std::string Graph::UniqueName(absl::string_view prefix) {
  for (;;) {
    std::string name = absl::StrCat(prefix, "__fw", next_unique_++);
    if (!index_.contains(name)) return name;
  }
}

bool Graph::IsGraphOutput(int value) const {
  return std::find(outputs.begin(), outputs.end(), value) != outputs.end();
}

std::vector<std::vector<int>> Graph::Consumers() const {
  std::vector<std::vector<int>> consumers(values.size());
  for (int n = 0; n < static_cast<int>(nodes.size()); ++n) {
    if (nodes[n].dead) continue;
    for (int v : nodes[n].inputs) {
      if (v >= 0 && (consumers[v].empty() || consumers[v].back() != n)) consumers[v].push_back(n);
    }
  }
  return consumers;
}

absl::Status Graph::Compact() {
  nodes.erase(std::remove_if(nodes.begin(), nodes.end(), [](const Node& n) { return n.dead; }),
              nodes.end());
  return TopologicalSort();
}

absl::Status Graph::TopologicalSort() {
  const int n = static_cast<int>(nodes.size());
  std::vector<int> producer(values.size(), -1);
  for (int i = 0; i < n; ++i) {
    for (int v : nodes[i].outputs) {
      if (v < 0) continue;
      if (producer[v] != -1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "value '", values[v].name, "' is written by two nodes: ", nodes[producer[v]].Describe(),
            " and ", nodes[i].Describe()));
      }
      producer[v] = i;
    }
  }
  // Kahn's algorithm, stable with respect to the current order.
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (int i = 0; i < n; ++i) {
    for (int v : nodes[i].inputs) {
      if (v < 0) continue;
      if (producer[v] == -1) {
        bool defined = values[v].constant.has_value() ||
                       std::find(inputs.begin(), inputs.end(), v) != inputs.end();
        if (!defined) {
          return absl::InvalidArgumentError(absl::StrCat(
              nodes[i].Describe(), " reads '", values[v].name,
              "', which is not a graph input, an initializer or the output of any node"));
        }
        continue;
      }
      ++pending[i];
      users[producer[v]].push_back(i);
    }
  }
  std::vector<int> order;
  order.reserve(n);
  std::vector<int> ready;
  for (int i = n - 1; i >= 0; --i) {
    if (pending[i] == 0) ready.push_back(i);
  }
  while (!ready.empty()) {
    int i = ready.back();
    ready.pop_back();
    order.push_back(i);
    // Push in reverse so that lower indices come out first.
    for (auto it = users[i].rbegin(); it != users[i].rend(); ++it) {
      if (--pending[*it] == 0) ready.push_back(*it);
    }
  }
  if (static_cast<int>(order.size()) != n) {
    std::vector<std::string> stuck;
    for (int i = 0; i < n && stuck.size() < 8; ++i) {
      if (pending[i] > 0) stuck.push_back(nodes[i].Describe());
    }
    return absl::InvalidArgumentError(
        absl::StrCat("graph has a cycle; nodes on or after it: ", absl::StrJoin(stuck, ", ")));
  }
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (int i : order) sorted.push_back(std::move(nodes[i]));
  nodes = std::move(sorted);
  for (Value& v : values) v.producer = -1;
  for (int i = 0; i < n; ++i) {
    for (int v : nodes[i].outputs) {
      if (v >= 0) values[v].producer = i;
    }
  }
  for (int v : outputs) {
    if (values[v].producer == -1 && !values[v].constant.has_value() &&
        std::find(inputs.begin(), inputs.end(), v) == inputs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", values[v].name, "' is not produced by any node"));
    }
  }
  return absl::OkStatus();
}

}  // namespace flywheel::engine
