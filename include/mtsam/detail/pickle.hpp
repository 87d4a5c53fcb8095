#pragma once

/// A small interpreter for protocol-2 pickle programs, enough for the `data.pkl` of `torch.save`
/// archives: containers, strings, numbers, globals, REDUCE, BUILD and persistent ids. What a
/// global or a persistent id means is left to the caller (see <mtsam/torch_save.hpp>).

#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace mtsam::detail::pickle {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

/// `module.name` of a GLOBAL opcode.
struct Global {
  std::string module;
  std::string name;
};

/// The result of calling something this interpreter does not know.
struct Opaque {
  std::string what;
};

using Items = std::vector<ValuePtr>;
using DictItems = std::vector<std::pair<ValuePtr, ValuePtr>>;

struct Value {
  std::variant<std::monostate, bool, int64_t, double, std::string, Items, DictItems, Global,
               torch::Tensor, Opaque>
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

/// What the program's REDUCE and BINPERSID opcodes call: the meaning of globals and of
/// persistent ids belongs to the file format, not to the pickle machine.
struct Hooks {
  std::function<ValuePtr(const Global& callable, const Items& args)> reduce;
  std::function<ValuePtr(const ValuePtr& id)> persistent;
};

/// Runs a protocol-2 pickle program (bounds-checked: a cut or malformed program throws
/// std::runtime_error, it never reads outside `data`).
class Machine {
 public:
  Machine(const char* data, size_t size, Hooks hooks)
      : data_(data), size_(size), hooks_(std::move(hooks)) {}

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

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  Hooks hooks_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
};

inline void Machine::step(unsigned char op) {
  switch (op) {
    case 0x80:
      read<uint8_t>();
      break;  // PROTO
    case '(':
      marks_.push_back(stack_.size());
      break;  // MARK
    case 'N':
      stack_.push_back(make(std::monostate{}));
      break;  // NONE
    case 0x88:
      stack_.push_back(make(true));
      break;  // NEWTRUE
    case 0x89:
      stack_.push_back(make(false));
      break;  // NEWFALSE
    case 'K':
      stack_.push_back(make<int64_t>(read<uint8_t>()));
      break;  // BININT1
    case 'M':
      stack_.push_back(make<int64_t>(read<uint16_t>()));
      break;  // BININT2
    case 'J':
      stack_.push_back(make<int64_t>(read<int32_t>()));
      break;      // BININT
    case 0x8a: {  // LONG1
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
    case 'X':
      stack_.push_back(make(bytes(read<uint32_t>())));
      break;  // BINUNICODE
    case 0x8c:
      stack_.push_back(make(bytes(read<uint8_t>())));
      break;  // SHORT_BINUNICODE
    case ')':
      stack_.push_back(make(Items{}, true));
      break;  // EMPTY_TUPLE
    case ']':
      stack_.push_back(make(Items{}));
      break;  // EMPTY_LIST
    case '}':
      stack_.push_back(make(DictItems{}));
      break;  // EMPTY_DICT
    case 't':
      stack_.push_back(make(pop_to_mark(), true));
      break;  // TUPLE
    case 'l':
      stack_.push_back(make(pop_to_mark()));
      break;  // LIST
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
    case 'q':
      memo_[read<uint8_t>()] = peek();
      break;  // BINPUT
    case 'r':
      memo_[read<uint32_t>()] = peek();
      break;  // LONG_BINPUT
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
      const auto* global = std::get_if<Global>(&callable->data);
      const auto* items = std::get_if<Items>(&args->data);
      if (global == nullptr || items == nullptr) {
        fail("REDUCE needs a global and an argument tuple");
      }
      stack_.push_back(hooks_.reduce(*global, *items));
      break;
    }
    case 'b':
      pop();
      break;  // BUILD: state of an object (an OrderedDict's `_metadata`)
    case 'Q':
      stack_.push_back(hooks_.persistent(pop()));
      break;  // BINPERSID
    case '0':
      pop();
      break;  // POP
    case '2':
      stack_.push_back(peek());
      break;  // DUP
    default:
      fail("unsupported pickle opcode " + std::to_string(op));
  }
}

}  // namespace mtsam::detail::pickle
