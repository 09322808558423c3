#include "engine/kernels/dnnl_util.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"

namespace flywheel::engine {
namespace {

using SetThreadsFn = void (*)(int);

// libgomp is loaded with libdnnl but is not on our link line; look its setter up at run time.
SetThreadsFn OmpSetNumThreads() {
  static const SetThreadsFn fn =
      reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return fn;
}

}  // namespace

const dnnl::engine& DnnlEngine() {
  static const dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

dnnl::stream& DnnlStream() {
  thread_local dnnl::stream stream(DnnlEngine());
  return stream;
}

void SetDnnlThreads(int n) {
  thread_local int current = -1;
  if (n == current) return;
  current = n;
  if (SetThreadsFn fn = OmpSetNumThreads()) fn(n);
}

dnnl::memory::desc PlainDesc(const int64_t* dims, int rank) {
  dnnl::memory::dims d(dims, dims + rank), strides(rank);
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    strides[i] = s;
    s *= dims[i];
  }
  return dnnl::memory::desc(d, dnnl::memory::data_type::f32, strides);
}

absl::Status DnnlError(const Node& node, const char* what, const dnnl::error& e) {
  return absl::InternalError(
      absl::StrCat(node.Describe(), ": oneDNN ", what, " failed: ", e.what()));
}

}  // namespace flywheel::engine
