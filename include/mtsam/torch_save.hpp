#pragma once

/// Reading `torch.save` zip archives that hold a dict of name -> tensor, such as SAM's `.pth`
/// files. The archive records are read with LibTorch's zip reader; the pickle program in
/// `data.pkl` is run by a small, bounds-checked interpreter that knows only what such files use
/// (dicts, OrderedDicts with their `_metadata`, tuples, strings, numbers, typed storages and
/// `_rebuild_tensor_v2`). `torch::pickle_load` in LibTorch 2.12 turns a `collections.OrderedDict`
/// into None and so cannot read `state_dict()` files.

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace mtsam {

namespace detail::pickle {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

/// `module.name` of a GLOBAL opcode.
struct Global {
  std::string module;
  std::string name;
};

/// A storage reference from a persistent id: its dtype, record key and element count.
struct StorageRef {
  torch::ScalarType dtype = torch::kFloat32;
  std::string key;
  int64_t numel = 0;
};

/// The result of calling something this interpreter does not know.
struct Opaque {
  std::string what;
};

using Items = std::vector<ValuePtr>;
using DictItems = std::vector<std::pair<ValuePtr, ValuePtr>>;

struct Value {
  std::variant<std::monostate, bool, int64_t, double, std::string, Items, DictItems, Global,
               StorageRef, torch::Tensor, Opaque>
      data;
  bool is_tuple = false;
};

template <typename T>
ValuePtr make(T value, bool tuple = false) {
  auto out = std::make_shared<Value>();
  out->data = std::move(value);
  out->is_tuple = tuple;
  return out;
}

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

/// Runs a protocol-2 pickle program; storages come from `records`.
class Machine {
 public:
  Machine(const char* data, size_t size, caffe2::serialize::PyTorchStreamReader& records)
      : data_(data), size_(size), records_(records) {}

  ValuePtr run() {
    while (true) {
      const auto op = static_cast<unsigned char>(byte());
      if (op == '.') {
        if (stack_.size() != 1) {
          fail("the program ends with " + std::to_string(stack_.size()) + " values");
        }
        return stack_.back();
      }
      step(op);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("data.pkl at byte " + std::to_string(pos_) + ": " + what);
  }

  char byte() {
    if (pos_ >= size_) {
      fail("the pickle program is cut short");
    }
    return data_[pos_++];
  }

  template <typename T>
  T read() {
    if (size_ - pos_ < sizeof(T) || pos_ > size_) {
      fail("the pickle program is cut short");
    }
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  std::string bytes(size_t n) {
    if (n > size_ - pos_) {
      fail("a string runs past the end of the program");
    }
    std::string out(data_ + pos_, n);
    pos_ += n;
    return out;
  }

  std::string line() {
    std::string out;
    for (char c = byte(); c != '\n'; c = byte()) {
      out += c;
    }
    return out;
  }

  ValuePtr peek() const {
    if (stack_.empty()) {
      fail("the stack is empty");
    }
    return stack_.back();
  }

  ValuePtr pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) {
      fail("stack underflow");
    }
    auto out = stack_.back();
    stack_.pop_back();
    return out;
  }

  Items pop_to_mark() {
    if (marks_.empty() || marks_.back() > stack_.size()) {
      fail("no MARK for a container opcode");
    }
    Items out(stack_.begin() + static_cast<long>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return out;
  }

  DictItems& dict_at(const ValuePtr& value) {
    if (auto* dict = std::get_if<DictItems>(&value->data)) {
      return *dict;
    }
    fail("SETITEM on something that is not a dict");
  }

  static void set_item(DictItems& dict, ValuePtr key, ValuePtr value) {
    dict.emplace_back(std::move(key), std::move(value));
  }

  void step(unsigned char op);
  ValuePtr call(const ValuePtr& callable, const ValuePtr& args);
  ValuePtr persistent(const ValuePtr& id);
  torch::Tensor rebuild_tensor(const Items& args);

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  caffe2::serialize::PyTorchStreamReader& records_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
  std::map<std::string, torch::Tensor> storages_;
};

inline void Machine::step(unsigned char op) {
  switch (op) {
    case 0x80: read<uint8_t>(); break;                                  // PROTO
    case '(': marks_.push_back(stack_.size()); break;                   // MARK
    case 'N': stack_.push_back(make(std::monostate{})); break;          // NONE
    case 0x88: stack_.push_back(make(true)); break;                     // NEWTRUE
    case 0x89: stack_.push_back(make(false)); break;                    // NEWFALSE
    case 'K': stack_.push_back(make<int64_t>(read<uint8_t>())); break;  // BININT1
    case 'M': stack_.push_back(make<int64_t>(read<uint16_t>())); break;  // BININT2
    case 'J': stack_.push_back(make<int64_t>(read<int32_t>())); break;   // BININT
    case 0x8a: {                                                         // LONG1
      const auto n = read<uint8_t>();
      if (n > 8) {
        fail("integer wider than 64 bits");
      }
      const auto raw = bytes(n);
      uint64_t value = 0;
      for (size_t i = 0; i < n; ++i) {
        value |= static_cast<uint64_t>(static_cast<unsigned char>(raw[i])) << (8 * i);
      }
      if (n > 0 && n < 8 && (static_cast<unsigned char>(raw[n - 1]) & 0x80) != 0) {
        value |= ~uint64_t{0} << (8 * n);
      }
      stack_.push_back(make(static_cast<int64_t>(value)));
      break;
    }
    case 'G': {  // BINFLOAT, big endian
      auto raw = read<uint64_t>();
      raw = __builtin_bswap64(raw);
      double value = 0.0;
      std::memcpy(&value, &raw, sizeof(value));
      stack_.push_back(make(value));
      break;
    }
    case 'X': stack_.push_back(make(bytes(read<uint32_t>()))); break;  // BINUNICODE
    case 0x8c: stack_.push_back(make(bytes(read<uint8_t>()))); break;  // SHORT_BINUNICODE
    case ')': stack_.push_back(make(Items{}, true)); break;            // EMPTY_TUPLE
    case ']': stack_.push_back(make(Items{})); break;                  // EMPTY_LIST
    case '}': stack_.push_back(make(DictItems{})); break;              // EMPTY_DICT
    case 't': stack_.push_back(make(pop_to_mark(), true)); break;      // TUPLE
    case 'l': stack_.push_back(make(pop_to_mark())); break;            // LIST
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      Items items(op - 0x84);
      for (auto it = items.rbegin(); it != items.rend(); ++it) {
        *it = pop();
      }
      stack_.push_back(make(std::move(items), true));
      break;
    }
    case 'd': {  // DICT
      auto items = pop_to_mark();
      if (items.size() % 2 != 0) {
        fail("DICT with an odd number of items");
      }
      DictItems dict;
      for (size_t i = 0; i < items.size(); i += 2) {
        set_item(dict, items[i], items[i + 1]);
      }
      stack_.push_back(make(std::move(dict)));
      break;
    }
    case 's': {  // SETITEM
      auto value = pop();
      auto key = pop();
      set_item(dict_at(peek()), std::move(key), std::move(value));
      break;
    }
    case 'u': {  // SETITEMS
      auto items = pop_to_mark();
      if (items.size() % 2 != 0 || stack_.empty()) {
        fail("malformed SETITEMS");
      }
      auto& dict = dict_at(stack_.back());
      for (size_t i = 0; i < items.size(); i += 2) {
        set_item(dict, items[i], items[i + 1]);
      }
      break;
    }
    case 'a':
    case 'e': {  // APPEND, APPENDS
      auto items = op == 'a' ? Items{pop()} : pop_to_mark();
      if (stack_.empty()) {
        fail("APPEND without a list");
      }
      auto* list = std::get_if<Items>(&stack_.back()->data);
      if (list == nullptr || stack_.back()->is_tuple) {
        fail("APPEND on something that is not a list");
      }
      list->insert(list->end(), items.begin(), items.end());
      break;
    }
    case 'q': memo_[read<uint8_t>()] = peek(); break;   // BINPUT
    case 'r': memo_[read<uint32_t>()] = peek(); break;  // LONG_BINPUT
    case 'h':
    case 'j': {  // BINGET, LONG_BINGET
      const uint32_t id = op == 'h' ? read<uint8_t>() : read<uint32_t>();
      const auto found = memo_.find(id);
      if (found == memo_.end()) {
        fail("memo entry " + std::to_string(id) + " was never stored");
      }
      stack_.push_back(found->second);
      break;
    }
    case 'c': {  // GLOBAL
      auto module = line();
      stack_.push_back(make(Global{std::move(module), line()}));
      break;
    }
    case 'R': {  // REDUCE
      auto args = pop();
      auto callable = pop();
      stack_.push_back(call(callable, args));
      break;
    }
    case 'b': pop(); break;  // BUILD: state of an object (an OrderedDict's `_metadata`)
    case 'Q': stack_.push_back(persistent(pop())); break;  // BINPERSID
    case '0': pop(); break;                                  // POP
    case '2': stack_.push_back(peek()); break;               // DUP
    default: fail("unsupported pickle opcode " + std::to_string(op));
  }
}


inline ValuePtr Machine::call(const ValuePtr& callable, const ValuePtr& args) {
  const auto* global = std::get_if<Global>(&callable->data);
  const auto* items = std::get_if<Items>(&args->data);
  if (global == nullptr || items == nullptr) {
    fail("REDUCE needs a global and an argument tuple");
  }
  const std::string name = global->module + "." + global->name;
  if (name == "collections.OrderedDict") {
    return make(DictItems{});
  }
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    return make(rebuild_tensor(*items));
  }
  if ((name == "torch._utils._rebuild_parameter" ||
       name == "torch._utils._rebuild_parameter_with_state") &&
      !items->empty() && std::holds_alternative<torch::Tensor>(items->front()->data)) {
    return items->front();
  }
  return make(Opaque{name});
}

inline ValuePtr Machine::persistent(const ValuePtr& id) {
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

inline torch::Tensor Machine::rebuild_tensor(const Items& args) {
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
    detail::pickle::Machine machine(static_cast<const char*>(program.get()), size, records);
    return machine.run();
  } catch (const std::exception& error) {
    std::string what = error.what();
    what = what.substr(0, what.find('\n'));
    throw std::runtime_error("cannot read the torch.save archive '" + path.string() +
                             "' (cut short, corrupt or not such an archive): " + what);
  }
}

}  // namespace mtsam
