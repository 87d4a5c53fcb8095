#pragma once

/// Writing a dict of name -> tensor the way Python's `torch.save` does for a state dict: a zip
/// archive (LibTorch's PyTorchStreamWriter) holding `data.pkl`, a protocol-2 pickle of a plain
/// dict whose tensors are `torch._utils._rebuild_tensor_v2` calls on persistent storages, and
/// one `data/<n>` record per storage. The official SAM `.pth` files have this layout (theirs is
/// an OrderedDict); `torch.load` and mtsam::read_pth read it.

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mtsam::train::detail {

/// The few pickle opcodes such a file uses.
class StateDictPickler {
 public:
  StateDictPickler() {
    op(0x80);  // PROTO
    op(2);
    op('}');  // EMPTY_DICT
    op('(');  // MARK
  }

  /// Adds `name` -> a tensor whose bytes are storage record `key` with `numel` elements.
  void add(const std::string& name, torch::ScalarType dtype, const std::string& key, int64_t numel,
           torch::IntArrayRef sizes, torch::IntArrayRef strides) {
    text(name);
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(');
    text("storage");
    global("torch", storage_type(dtype));
    text(key);
    text("cpu");
    integer(numel);
    op('t');  // TUPLE: the persistent id
    op('Q');  // BINPERSID
    integer(0);
    tuple(sizes);
    tuple(strides);
    op(0x89);  // NEWFALSE: requires_grad
    global("collections", "OrderedDict");
    op(')');
    op('R');  // REDUCE: empty backward hooks
    op('t');
    op('R');
  }

  /// The finished pickle program.
  std::string finish() {
    op('u');  // SETITEMS
    op('.');  // STOP
    return std::move(bytes_);
  }

 private:
  static const char* storage_type(torch::ScalarType dtype) {
    switch (dtype) {
      case torch::kFloat32:
        return "FloatStorage";
      case torch::kFloat64:
        return "DoubleStorage";
      case torch::kFloat16:
        return "HalfStorage";
      case torch::kBFloat16:
        return "BFloat16Storage";
      case torch::kInt64:
        return "LongStorage";
      case torch::kInt32:
        return "IntStorage";
      case torch::kInt16:
        return "ShortStorage";
      case torch::kInt8:
        return "CharStorage";
      case torch::kUInt8:
        return "ByteStorage";
      case torch::kBool:
        return "BoolStorage";
      default:
        break;
    }
    TORCH_CHECK(false, "torch.save writer: unsupported dtype ", dtype);
    return "";
  }

  void op(int code) { bytes_.push_back(static_cast<char>(code)); }

  void little_endian(uint64_t value, int count) {
    for (int i = 0; i < count; ++i) {
      bytes_.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
    }
  }

  void text(const std::string& value) {
    op('X');  // BINUNICODE
    little_endian(value.size(), 4);
    bytes_ += value;
  }

  void global(const std::string& module, const std::string& name) {
    op('c');
    bytes_ += module + "\n" + name + "\n";
  }

  void integer(int64_t value) {
    if (value >= 0 && value < 256) {
      op('K');  // BININT1
      little_endian(static_cast<uint64_t>(value), 1);
    } else if (value >= 0 && value < 65536) {
      op('M');  // BININT2
      little_endian(static_cast<uint64_t>(value), 2);
    } else if (value >= INT32_MIN && value <= INT32_MAX) {
      op('J');  // BININT
      little_endian(static_cast<uint64_t>(value), 4);
    } else {
      op(0x8a);  // LONG1, 8 bytes two's complement
      op(8);
      little_endian(static_cast<uint64_t>(value), 8);
    }
  }

  void tuple(torch::IntArrayRef values) {
    if (values.empty()) {
      op(')');
      return;
    }
    op('(');
    for (int64_t v : values) {
      integer(v);
    }
    op('t');
  }

  std::string bytes_;
};

/// The bytes of a `torch.save` archive of `tensors` (CPU copies are made as needed).
inline std::string torch_save_bytes(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::string archive;
  caffe2::serialize::PyTorchStreamWriter writer([&archive](const void* data, size_t size) {
    archive.append(static_cast<const char*>(data), size);
    return size;
  });
  StateDictPickler pickler;
  std::vector<std::pair<std::string, torch::Tensor>> storages;
  for (const auto& [name, tensor] : tensors) {
    const auto host = tensor.detach().to(torch::kCPU).contiguous();
    const std::string key = std::to_string(storages.size());
    pickler.add(name, host.scalar_type(), key, host.numel(), host.sizes(), host.strides());
    storages.emplace_back(key, host);
  }
  const std::string program = pickler.finish();
  writer.writeRecord("data.pkl", program.data(), program.size());
  const std::string order = "little";
  writer.writeRecord("byteorder", order.data(), order.size());
  for (const auto& [key, host] : storages) {
    writer.writeRecord("data/" + key, host.data_ptr(), host.nbytes());
  }
  writer.writeEndOfFile();
  return archive;
}

}  // namespace mtsam::train::detail
