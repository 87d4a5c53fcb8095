#pragma once

/// Reading `torch.save` zip archives that hold a dict of name -> tensor, such as SAM's `.pth`
/// files. The archive records are read with LibTorch's zip reader and `data.pkl` is run by the
/// bounds-checked pickle machine of <mtsam/detail/pickle.hpp>, which knows what such files use
/// (dicts, OrderedDicts with their `_metadata`, typed storages, `_rebuild_tensor_v2`).
/// `torch::pickle_load` of LibTorch 2.12 turns a `collections.OrderedDict` into None and so
/// cannot read `state_dict()` files.

#include <mtsam/detail/pickle.hpp>

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtsam {

namespace detail::pickle {

inline torch::ScalarType storage_dtype(const std::string& name) {
  static const std::map<std::string, torch::ScalarType> types{
      {"FloatStorage", torch::kFloat32}, {"DoubleStorage", torch::kFloat64},
      {"HalfStorage", torch::kFloat16},  {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kInt64},    {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},   {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},    {"BoolStorage", torch::kBool}};
  const auto found = types.find(name);
  if (found == types.end()) {
    throw std::runtime_error("unsupported storage type torch." + name);
  }
  return found->second;
}

/// The torch.save meaning of globals and persistent ids; storages are read from `records`.
class TorchSaveReader {
 public:
  explicit TorchSaveReader(caffe2::serialize::PyTorchStreamReader& records) : records_(records) {}

  ValuePtr reduce(const Global& global, const Items& args);
  ValuePtr persistent(const ValuePtr& id);

 private:
  [[noreturn]] static void fail(const std::string& what) { throw std::runtime_error(what); }
  torch::Tensor rebuild_tensor(const Items& args);

  caffe2::serialize::PyTorchStreamReader& records_;
  std::map<std::string, torch::Tensor> storages_;
};

inline ValuePtr TorchSaveReader::reduce(const Global& global, const Items& args) {
  const std::string name = global.module + "." + global.name;
  if (name == "collections.OrderedDict") {
    return make(DictItems{});
  }
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    return make(rebuild_tensor(args));
  }
  if ((name == "torch._utils._rebuild_parameter" ||
       name == "torch._utils._rebuild_parameter_with_state") &&
      !args.empty() && std::holds_alternative<torch::Tensor>(args.front()->data)) {
    return args.front();
  }
  return make(Opaque{name});
}

inline ValuePtr TorchSaveReader::persistent(const ValuePtr& id) {
  const auto* items = std::get_if<Items>(&id->data);
  if (items == nullptr || items->size() < 5) {
    fail("a persistent id must be ('storage', type, key, location, numel)");
  }
  const auto* kind = std::get_if<std::string>(&(*items)[0]->data);
  const auto* type = std::get_if<Global>(&(*items)[1]->data);
  const auto* key = std::get_if<std::string>(&(*items)[2]->data);
  const auto* numel = std::get_if<int64_t>(&(*items)[4]->data);
  if (kind == nullptr || *kind != "storage" || type == nullptr || key == nullptr ||
      numel == nullptr || *numel < 0) {
    fail("malformed storage persistent id");
  }
  if (const auto found = storages_.find(*key); found != storages_.end()) {
    return make(found->second);
  }
  const auto dtype = storage_dtype(type->name);
  const std::string record = "data/" + *key;
  if (!records_.hasRecord(record)) {
    fail("the archive has no record " + record);
  }
  const auto bytes = static_cast<uint64_t>(*numel) * c10::elementSize(dtype);
  if (records_.getRecordSize(record) != bytes) {
    fail("record " + record + " holds " + std::to_string(records_.getRecordSize(record)) +
         " bytes, expected " + std::to_string(bytes));
  }
  auto storage = torch::empty({*numel}, torch::TensorOptions().dtype(dtype));
  if (bytes > 0) {
    records_.getRecord(record, storage.data_ptr(), bytes);
  }
  storages_.emplace(*key, storage);
  return make(storage);
}

inline torch::Tensor TorchSaveReader::rebuild_tensor(const Items& args) {
  const auto ints = [&](const ValuePtr& value) {
    const auto* items = std::get_if<Items>(&value->data);
    if (items == nullptr) {
      fail("tensor sizes and strides must be tuples");
    }
    std::vector<int64_t> out;
    for (const auto& item : *items) {
      const auto* number = std::get_if<int64_t>(&item->data);
      if (number == nullptr || *number < 0) {
        fail("tensor sizes and strides must be non-negative integers");
      }
      out.push_back(*number);
    }
    return out;
  };
  if (args.size() < 4 || !std::holds_alternative<torch::Tensor>(args[0]->data) ||
      !std::holds_alternative<int64_t>(args[1]->data)) {
    fail("_rebuild_tensor needs (storage, offset, size, stride, ...)");
  }
  const auto& storage = std::get<torch::Tensor>(args[0]->data);
  const int64_t offset = std::get<int64_t>(args[1]->data);
  const auto sizes = ints(args[2]);
  const auto strides = ints(args[3]);
  if (sizes.size() != strides.size() || offset < 0) {
    fail("tensor sizes, strides and offset do not agree");
  }
  // The last element addressed must lie inside the storage (no overread).
  __int128 last = offset;
  bool empty = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    empty = empty || sizes[i] == 0;
    last += static_cast<__int128>(sizes[i] > 0 ? sizes[i] - 1 : 0) * strides[i];
  }
  if (!empty && last >= storage.numel()) {
    fail("a tensor reaches past the end of its storage");
  }
  return empty ? torch::empty(sizes, storage.options())
               : storage.as_strided(sizes, strides, offset);
}

}  // namespace detail::pickle

/// Reads the object saved in a `torch.save` zip archive; throws std::runtime_error naming the
/// path and the problem for a missing, cut, corrupt or unsupported file.
inline detail::pickle::ValuePtr read_torch_save(const std::filesystem::path& path) {
  try {
    caffe2::serialize::PyTorchStreamReader records(path.string());
    if (!records.hasRecord("data.pkl")) {
      throw std::runtime_error("the archive has no data.pkl record");
    }
    const auto [program, size] = records.getRecord("data.pkl");
    detail::pickle::TorchSaveReader reader(records);
    detail::pickle::Hooks hooks{
        [&](const detail::pickle::Global& global, const detail::pickle::Items& args) {
          return reader.reduce(global, args);
        },
        [&](const detail::pickle::ValuePtr& id) { return reader.persistent(id); }};
    detail::pickle::Machine machine(static_cast<const char*>(program.get()), size,
                                    std::move(hooks));
    return machine.run();
  } catch (const std::exception& error) {
    std::string what = error.what();
    what = what.substr(0, what.find('\n'));
    throw std::runtime_error("cannot read the torch.save archive '" + path.string() +
                             "' (cut short, corrupt or not such an archive): " + what);
  }
}

}  // namespace mtsam
