// Request inputs for `flywheel bench --url`: shapes from the model metadata, zero or fixed-seed
// random data in the wire layout.
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/load_bench.h"

namespace flywheel::cli {
namespace {

// Same seed on every run, so that two runs send the same bytes.
constexpr uint64_t kSeed = 12345;
constexpr int64_t kDefaultIntMax = 100;
constexpr int kRandomStringLength = 8;
// A request body beyond this is almost certainly a wrong --batch or --dim.
constexpr int64_t kMaxInputBytes = int64_t{1} << 31;

// IEEE binary16, round to nearest even.
uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t raw_exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (raw_exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));
  const int exp = static_cast<int>(raw_exp) - 127 + 15;
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  uint32_t half, rem, mid;
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - exp;
    half = mant >> shift;
    rem = mant & ((1u << shift) - 1);
    mid = 1u << (shift - 1);
  } else {
    half = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
    rem = mant & 0x1fffu;
    mid = 0x1000u;
  }
  if (rem > mid || (rem == mid && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

uint16_t FloatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

template <typename T, typename Gen>
void FillAs(std::string& data, int64_t n, Gen gen) {
  data.resize(n * sizeof(T));
  char* p = data.data();
  for (int64_t i = 0; i < n; ++i) {
    const T v = static_cast<T>(gen());
    std::memcpy(p + i * sizeof(T), &v, sizeof(T));
  }
}

void AppendLength(std::string& data, uint32_t length) {
  char bytes[4] = {static_cast<char>(length & 0xff), static_cast<char>((length >> 8) & 0xff),
                   static_cast<char>((length >> 16) & 0xff),
                   static_cast<char>((length >> 24) & 0xff)};
  data.append(bytes, 4);
}

absl::Status FillRandom(InputTensor& t, int64_t n, int64_t int_max, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  auto integer = [&](int64_t cap) {
    const int64_t hi = std::min(int_max > 0 ? int_max : kDefaultIntMax, cap);
    return std::uniform_int_distribution<int64_t>(0, hi - 1)(rng);
  };
  switch (t.dtype) {
    case DataType::kBool:
      FillAs<uint8_t>(t.data, n, [&] { return rng() & 1; });
      break;
    case DataType::kUint8:
      FillAs<uint8_t>(t.data, n, [&] { return integer(256); });
      break;
    case DataType::kUint16:
      FillAs<uint16_t>(t.data, n, [&] { return integer(65536); });
      break;
    case DataType::kUint32:
      FillAs<uint32_t>(t.data, n, [&] { return integer(int64_t{1} << 32); });
      break;
    case DataType::kUint64:
      FillAs<uint64_t>(t.data, n, [&] { return integer(INT64_MAX); });
      break;
    case DataType::kInt8:
      FillAs<int8_t>(t.data, n, [&] { return integer(128); });
      break;
    case DataType::kInt16:
      FillAs<int16_t>(t.data, n, [&] { return integer(32768); });
      break;
    case DataType::kInt32:
      FillAs<int32_t>(t.data, n, [&] { return integer(int64_t{1} << 31); });
      break;
    case DataType::kInt64:
      FillAs<int64_t>(t.data, n, [&] { return integer(INT64_MAX); });
      break;
    case DataType::kFp16:
      FillAs<uint16_t>(t.data, n, [&] { return FloatToHalf(static_cast<float>(real(rng))); });
      break;
    case DataType::kBf16:
      FillAs<uint16_t>(t.data, n, [&] { return FloatToBf16(static_cast<float>(real(rng))); });
      break;
    case DataType::kFp32:
      FillAs<float>(t.data, n, [&] { return real(rng); });
      break;
    case DataType::kFp64:
      FillAs<double>(t.data, n, [&] { return real(rng); });
      break;
    case DataType::kBytes: {
      std::uniform_int_distribution<int> letter('a', 'z');
      t.data.clear();
      for (int64_t i = 0; i < n; ++i) {
        AppendLength(t.data, kRandomStringLength);
        for (int c = 0; c < kRandomStringLength; ++c) t.data += static_cast<char>(letter(rng));
      }
      break;
    }
    case DataType::kInvalid:
      return absl::InvalidArgumentError(absl::StrCat("input '", t.name, "': invalid datatype"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<InputTensor>> MakeRequestInputs(const ModelMetadata& metadata,
                                                           int64_t batch, int64_t dim,
                                                           int64_t int_max,
                                                           const std::string& input_data) {
  if (input_data != "zero" && input_data != "random") {
    return absl::InvalidArgumentError(
        absl::StrCat("--input-data '", input_data, "': expected zero or random"));
  }
  if (metadata.inputs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", metadata.name, "': the server's metadata lists no inputs"));
  }
  std::mt19937_64 rng(kSeed);
  std::vector<InputTensor> inputs;
  for (const TensorSpec& spec : metadata.inputs) {
    InputTensor t;
    t.name = spec.name;
    t.dtype = spec.dtype;
    const std::string signature =
        absl::StrCat("model '", metadata.name, "' input '", spec.name, "' ",
                     DataTypeName(spec.dtype), " [", absl::StrJoin(spec.shape, ","), "]");
    int64_t n = 1;
    for (size_t i = 0; i < spec.shape.size(); ++i) {
      int64_t d = spec.shape[i];
      if (d == -1) {
        d = i == 0 ? batch : dim;
      } else if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(signature, ": negative dimension"));
      } else if (i == 0 && batch != 1 && d != batch) {
        return absl::InvalidArgumentError(
            absl::StrCat(signature, ": the first dimension is fixed, so --batch ", batch,
                         " cannot apply (use --batch 1)"));
      }
      t.shape.push_back(d);
      n *= d;
      // No element takes more than 16 bytes (FP64: 8; a random BYTES element: 4 + 8).
      if (n > kMaxInputBytes / 16) {
        return absl::InvalidArgumentError(absl::StrCat(signature, ": more than ", kMaxInputBytes,
                                                       " bytes; lower --batch or --dim"));
      }
    }
    if (input_data == "zero") {
      if (spec.dtype == DataType::kBytes) {
        for (int64_t i = 0; i < n; ++i) AppendLength(t.data, 0);
      } else {
        t.data.assign(n * DataTypeSize(spec.dtype), '\0');
      }
    } else {
      absl::Status status = FillRandom(t, n, int_max, rng);
      if (!status.ok()) return status;
    }
    inputs.push_back(std::move(t));
  }
  return inputs;
}

}  // namespace flywheel::cli
