#pragma once

/// Reading MATLAB `.mat` files (v5, and v7.3 where matio is built with HDF5) through libmatio:
/// numeric arrays as tensors in row-major order, strings, and struct fields, with errors that
/// name the file and the variable or field.

#include <matio.h>

#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtsam::data {

namespace detail {

struct MatFileCloser {
  void operator()(mat_t* mat) const { Mat_Close(mat); }
};
struct MatVarFreer {
  void operator()(matvar_t* var) const { Mat_VarFree(var); }
};

}  // namespace detail

/// An open `.mat` file; closes itself.
using MatFile = std::unique_ptr<mat_t, detail::MatFileCloser>;
/// A variable read from a `.mat` file, with all its fields; frees itself. Struct fields reached
/// through it are owned by it.
using MatVar = std::unique_ptr<matvar_t, detail::MatVarFreer>;

/// Opens `path` read-only; throws naming the path and `what` it should hold.
inline MatFile open_mat(const std::filesystem::path& path, const std::string& what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error("expected " + what + " at " + path.string() +
                             ", but there is no such file");
  }
  MatFile mat(Mat_Open(path.string().c_str(), MAT_ACC_RDONLY));
  if (!mat) {
    throw std::runtime_error("cannot open " + path.string() + " as a MATLAB file (expected " +
                             what + ")");
  }
  return mat;
}

/// Reads variable `name` with all its data; throws when the file has no such variable.
inline MatVar read_mat_variable(const std::filesystem::path& path, const std::string& name,
                                const std::string& what) {
  MatFile mat = open_mat(path, what);
  MatVar var(Mat_VarRead(mat.get(), name.c_str()));
  if (!var) {
    throw std::runtime_error(path.string() + ": no readable variable '" + name + "' (expected " +
                             what + ")");
  }
  return var;
}

/// Number of elements of a variable (product of its dims).
inline size_t mat_numel(const matvar_t* var) {
  size_t n = 1;
  for (int d = 0; d < var->rank; ++d) {
    n *= var->dims[d];
  }
  return n;
}

/// Field `field` of element `index` of a struct array; throws naming `where` when absent.
inline matvar_t* mat_field(matvar_t* strct, const std::string& field, size_t index,
                           const std::string& where) {
  if (strct == nullptr || strct->class_type != MAT_C_STRUCT) {
    throw std::runtime_error(where + ": expected a struct holding field '" + field + "'");
  }
  if (index >= mat_numel(strct)) {
    throw std::runtime_error(where + ": struct element " + std::to_string(index) +
                             " out of range for field '" + field + "'");
  }
  matvar_t* f = Mat_VarGetStructFieldByName(strct, field.c_str(), index);
  if (f == nullptr) {
    throw std::runtime_error(where + ": struct has no field '" + field + "'");
  }
  return f;
}

/// A MATLAB char array as text (code units above 0xFF become '?').
inline std::string mat_string(const matvar_t* var, const std::string& where) {
  if (var == nullptr || var->class_type != MAT_C_CHAR) {
    throw std::runtime_error(where + ": expected a char array");
  }
  const size_t n = mat_numel(var);
  if (n == 0 || var->data == nullptr) {
    return {};
  }
  const int unit = var->data_size;
  if ((unit != 1 && unit != 2 && unit != 4) || var->nbytes < n * static_cast<size_t>(unit)) {
    throw std::runtime_error(where + ": char array with unexpected storage");
  }
  std::string text(n, '?');
  const auto* bytes = static_cast<const uint8_t*>(var->data);
  for (size_t i = 0; i < n; ++i) {
    uint32_t code = 0;
    for (int b = unit - 1; b >= 0; --b) {
      code = (code << 8) | bytes[i * unit + b];
    }
    if (code <= 0xFF) {
      text[i] = static_cast<char>(code);
    }
  }
  return text;
}

/// A real numeric or logical MATLAB array as a tensor of the matching dtype, in row-major
/// order with the MATLAB dims (`[H, W]` for an H-by-W matrix). uint16/uint32 widen to int32/64;
/// uint64 is refused.
inline torch::Tensor mat_tensor(const matvar_t* var, const std::string& where) {
  if (var == nullptr) {
    throw std::runtime_error(where + ": missing numeric array");
  }
  if (var->isComplex) {
    throw std::runtime_error(where + ": complex arrays are not supported");
  }
  torch::Dtype stored = torch::kFloat64;
  int64_t size = 8;
  bool widen = false;
  switch (var->class_type) {
    case MAT_C_DOUBLE:
      stored = torch::kFloat64;
      size = 8;
      break;
    case MAT_C_SINGLE:
      stored = torch::kFloat32;
      size = 4;
      break;
    case MAT_C_INT8:
      stored = torch::kInt8;
      size = 1;
      break;
    case MAT_C_UINT8:
      stored = torch::kUInt8;
      size = 1;
      break;
    case MAT_C_INT16:
      stored = torch::kInt16;
      size = 2;
      break;
    case MAT_C_UINT16:
      stored = torch::kInt16;
      size = 2;
      widen = true;
      break;
    case MAT_C_INT32:
      stored = torch::kInt32;
      size = 4;
      break;
    case MAT_C_UINT32:
      stored = torch::kInt32;
      size = 4;
      widen = true;
      break;
    case MAT_C_INT64:
      stored = torch::kInt64;
      size = 8;
      break;
    default:
      throw std::runtime_error(where + ": expected a real numeric array, got MATLAB class " +
                               std::to_string(static_cast<int>(var->class_type)));
  }
  std::vector<int64_t> dims(var->dims, var->dims + var->rank);
  const size_t n = mat_numel(var);
  if (n > 0 && (var->data == nullptr || var->data_size != size ||
                var->nbytes < n * static_cast<size_t>(size))) {
    throw std::runtime_error(where + ": numeric array whose storage does not match its dims");
  }
  // MATLAB is column-major: the bytes are a row-major array of the reversed dims.
  std::vector<int64_t> reversed(dims.rbegin(), dims.rend());
  torch::Tensor out = torch::empty(reversed, stored);
  if (n > 0) {
    std::memcpy(out.data_ptr(), var->data, n * static_cast<size_t>(size));
  }
  if (widen) {
    out = stored == torch::kInt16 ? out.to(torch::kInt32).bitwise_and(0xFFFF)
                                  : out.to(torch::kInt64).bitwise_and(0xFFFFFFFFLL);
  }
  std::vector<int64_t> order(dims.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = static_cast<int64_t>(order.size() - 1 - i);
  }
  return out.permute(order).contiguous();
}

/// Reads the numeric variable `name` of `path` as a tensor (see `mat_tensor`).
inline torch::Tensor read_mat_array(const std::filesystem::path& path, const std::string& name) {
  MatVar var = read_mat_variable(path, name, "a numeric array '" + name + "'");
  return mat_tensor(var.get(), path.string() + " variable '" + name + "'");
}

}  // namespace mtsam::data
