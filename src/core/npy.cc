#include "core/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/status.h"

namespace flywheel {
namespace {

struct NpyType {
  absl::string_view descr;
  DataType type;
};
constexpr NpyType kNpyTypes[] = {
    {"<f4", DataType::kFp32},   {"<f8", DataType::kFp64},   {"<f2", DataType::kFp16},
    {"<i8", DataType::kInt64},  {"<i4", DataType::kInt32},  {"<i2", DataType::kInt16},
    {"|i1", DataType::kInt8},   {"<u8", DataType::kUint64}, {"<u4", DataType::kUint32},
    {"<u2", DataType::kUint16}, {"|u1", DataType::kUint8},  {"|b1", DataType::kBool},
};

// Finds the value text of 'key' in the header dict, e.g. descr -> "'<f4'".
absl::StatusOr<absl::string_view> HeaderField(absl::string_view header, absl::string_view key,
                                              absl::string_view what) {
  std::string quoted = absl::StrCat("'", key, "'");
  size_t pos = header.find(quoted);
  if (pos == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": .npy header has no '", key, "'"));
  }
  size_t colon = header.find(':', pos);
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": malformed .npy header"));
  }
  return absl::StripLeadingAsciiWhitespace(header.substr(colon + 1));
}

}  // namespace

absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes, absl::string_view what) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != "\x93NUMPY") {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a .npy file (bad magic)"));
  }
  uint8_t major = static_cast<uint8_t>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return absl::InvalidArgumentError(absl::StrCat(what, ": truncated"));
    uint32_t len;
    std::memcpy(&len, bytes.data() + 8, 4);
    header_len = len;
    offset = 12;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(what, ": unsupported .npy version ", major));
  }
  if (bytes.size() < offset + header_len) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": truncated .npy header"));
  }
  absl::string_view header = bytes.substr(offset, header_len);
  absl::string_view body = bytes.substr(offset + header_len);

  FW_ASSIGN_OR_RETURN(absl::string_view descr_text, HeaderField(header, "descr", what));
  DataType dtype = DataType::kInvalid;
  for (const NpyType& t : kNpyTypes) {
    if (absl::StartsWith(descr_text, absl::StrCat("'", t.descr, "'"))) dtype = t.type;
  }
  if (dtype == DataType::kInvalid) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": unsupported .npy dtype ",
                                                   descr_text.substr(0, descr_text.find(','))));
  }
  FW_ASSIGN_OR_RETURN(absl::string_view order, HeaderField(header, "fortran_order", what));
  if (absl::StartsWith(order, "True")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": Fortran-order .npy is not supported; save with C order"));
  }
  FW_ASSIGN_OR_RETURN(absl::string_view shape_text, HeaderField(header, "shape", what));
  size_t open = shape_text.find('('), close = shape_text.find(')');
  if (open != 0 || close == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": malformed .npy shape"));
  }
  std::vector<int64_t> dims;
  for (absl::string_view part :
       absl::StrSplit(shape_text.substr(1, close - 1), ',', absl::SkipWhitespace())) {
    int64_t d;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &d)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": malformed .npy shape"));
    }
    dims.push_back(d);
  }
  // Check the data is there before allocating for it: a short header must not make us allocate
  // gigabytes.
  FW_ASSIGN_OR_RETURN(Shape shape, Shape::Checked(dims, what));
  const size_t data_bytes = static_cast<size_t>(shape.NumElements()) * DataTypeSize(dtype);
  if (body.size() < data_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": .npy data truncated: expected ",
                                                   data_bytes, " bytes, found ", body.size()));
  }
  FW_ASSIGN_OR_RETURN(Tensor t, Tensor::SafeAllocate(dtype, std::move(shape), what));
  if (t.ByteSize() > 0) std::memcpy(t.raw_data(), body.data(), t.ByteSize());
  return t;
}

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseNpy(ss.str(), path);
}

absl::Status WriteNpy(const std::string& path, const Tensor& tensor) {
  absl::string_view descr;
  for (const NpyType& t : kNpyTypes) {
    if (t.type == tensor.dtype()) descr = t.descr;
  }
  if (descr.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", DataTypeName(tensor.dtype()), " tensor as .npy"));
  }
  std::string shape;
  for (int i = 0; i < tensor.rank(); ++i) absl::StrAppend(&shape, tensor.dim(i), ",");
  if (tensor.rank() > 1) shape.pop_back();
  std::string header =
      absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", shape, "), }");
  // Pad with spaces so that the data starts on a 64-byte boundary, ending with a newline.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write '", path, "'"));
  char prefix[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
  prefix[8] = static_cast<char>(header.size() & 0xff);
  prefix[9] = static_cast<char>(header.size() >> 8);
  out.write(prefix, 10);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(tensor.raw_data()),
            static_cast<std::streamsize>(tensor.ByteSize()));
  if (!out) return absl::DataLossError(absl::StrCat("failed writing '", path, "'"));
  return absl::OkStatus();
}

}  // namespace flywheel
