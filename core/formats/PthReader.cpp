#include "formats/PthReader.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <unordered_map>

#include "formats/ZipArchive.h"

// Storage bytes are copied as they are: torch.save writes little-endian data (and says so in the
// archive's "byteorder" entry since 2.1); the host must be little-endian too.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "pth reading assumes little-endian");

namespace sae {

namespace {

struct StorageType {
  const char* name;  // the class torch pickles for a storage of this dtype
  torch::ScalarType type;
  uint64_t size;
};

constexpr StorageType kStorageTypes[] = {
    {"DoubleStorage", torch::kFloat64, 8}, {"FloatStorage", torch::kFloat32, 4},
    {"HalfStorage", torch::kFloat16, 2},   {"BFloat16Storage", torch::kBFloat16, 2},
    {"LongStorage", torch::kInt64, 8},     {"IntStorage", torch::kInt32, 4},
    {"ShortStorage", torch::kInt16, 2},    {"CharStorage", torch::kInt8, 1},
    {"ByteStorage", torch::kUInt8, 1},     {"BoolStorage", torch::kBool, 1},
    {"UntypedStorage", torch::kUInt8, 1},
};

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// One object on the unpickler's stack. Lists and dicts are shared because the memo and the stack
// refer to the same object while APPENDS/SETITEMS fill it.
struct Value {
  enum class Kind {
    None,
    Bool,
    Int,
    Float,
    String,
    Bytes,
    Tuple,
    List,
    Dict,
    Global,
    Tensor,
    Object
  };
  Kind kind = Kind::None;
  int64_t i = 0;
  double f = 0;
  std::string s;  // String, Bytes; Global and Object: "module.name"
  std::vector<ValuePtr> items;
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;
  torch::Tensor tensor;  // Tensor: a rebuilt tensor, or a whole 1-D storage
};

ValuePtr newValue(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

const char* kindName(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::None:
      return "None";
    case Value::Kind::Bool:
      return "bool";
    case Value::Kind::Int:
      return "int";
    case Value::Kind::Float:
      return "float";
    case Value::Kind::String:
      return "str";
    case Value::Kind::Bytes:
      return "bytes";
    case Value::Kind::Tuple:
      return "tuple";
    case Value::Kind::List:
      return "list";
    case Value::Kind::Dict:
      return "dict";
    case Value::Kind::Global:
      return "global";
    case Value::Kind::Tensor:
      return "tensor";
    case Value::Kind::Object:
      return "object";
  }
  return "?";
}

class Unpickler {
 public:
  Unpickler(const ZipArchive& zip, std::string prefix, std::string pickle)
      : zip_(zip), prefix_(std::move(prefix)), data_(std::move(pickle)) {}
  // A corrupt pickle can build reference cycles that shared_ptr never frees (DUP DUP APPEND puts
  // a list inside itself; LeakSanitizer caught it in fuzz/fuzz_pth_pickle): empty every
  // container made here. Tensors already handed out keep their own references.
  ~Unpickler() {
    for (const auto& v : made_) {
      v->items.clear();
      v->dict.clear();
    }
  }
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  ValuePtr run() {
    while (true) {
      const size_t opAt = pos_;
      const uint8_t op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          bytes(8);
          break;  // FRAME: framing is irrelevant when all is in memory
        case '.':
          return finish();  // STOP
        case '(':
          marks_.push_back(stack_.size());
          break;
        case '0':
          pop();
          break;
        case '1':
          popMark();
          break;
        case '2':
          push(top());
          break;  // DUP
        case 'N':
          push(make(Value::Kind::None));
          break;
        case 0x88:
          push(boolean(true));
          break;
        case 0x89:
          push(boolean(false));
          break;
        case 'J':
          push(integer(static_cast<int32_t>(le(4))));
          break;
        case 'K':
          push(integer(static_cast<int64_t>(le(1))));
          break;
        case 'M':
          push(integer(static_cast<int64_t>(le(2))));
          break;
        case 0x8a:
          push(longInteger(byte()));
          break;
        case 0x8b:
          push(longInteger(le(4)));
          break;
        case 'G': {
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k)
            bits = (bits << 8) | byte();  // big-endian
          auto v = make(Value::Kind::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X':
          push(text(Value::Kind::String, le(4)));
          break;
        case 0x8c:
          push(text(Value::Kind::String, byte()));
          break;
        case 0x8d:
          push(text(Value::Kind::String, le(8)));
          break;
        case 'T':
          push(text(Value::Kind::String, le(4)));
          break;
        case 'U':
          push(text(Value::Kind::String, byte()));
          break;
        case 'B':
          push(text(Value::Kind::Bytes, le(4)));
          break;
        case 'C':
          push(text(Value::Kind::Bytes, byte()));
          break;
        case 0x8e:
          push(text(Value::Kind::Bytes, le(8)));
          break;
        case ')':
          push(make(Value::Kind::Tuple));
          break;
        case 't': {
          auto v = make(Value::Kind::Tuple);
          v->items = popMark();
          push(v);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          auto v = make(Value::Kind::Tuple);
          const size_t n = op - 0x84u;
          if (stack_.size() < n + floor())
            fail(opAt, "TUPLE" + std::to_string(n) + " on a short stack");
          v->items.assign(stack_.end() - static_cast<long>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(v);
          break;
        }
        case ']':
          push(make(Value::Kind::List));
          break;
        case 0x8f:
          push(make(Value::Kind::List));
          break;  // EMPTY_SET: kept as a list
        case 'l': {
          auto v = make(Value::Kind::List);
          v->items = popMark();
          push(v);
          break;
        }
        case 'a': {
          auto item = pop();
          auto list = top();
          if (list->kind != Value::Kind::List)
            fail(opAt, "APPEND to a " + std::string(kindName(list->kind)));
          list->items.push_back(item);
          break;
        }
        case 'e':
        case 0x90: {  // APPENDS, ADDITEMS
          auto items = popMark();
          auto list = top();
          if (list->kind != Value::Kind::List)
            fail(opAt, "APPENDS to a " + std::string(kindName(list->kind)));
          list->items.insert(list->items.end(), items.begin(), items.end());
          break;
        }
        case 0x91: {  // FROZENSET
          auto v = make(Value::Kind::List);
          v->items = popMark();
          push(v);
          break;
        }
        case '}':
          push(make(Value::Kind::Dict));
          break;
        case 'd': {
          auto v = make(Value::Kind::Dict);
          addPairs(v, popMark(), opAt);
          push(v);
          break;
        }
        case 's': {
          auto value = pop();
          auto key = pop();
          auto dict = top();
          if (dict->kind != Value::Kind::Dict)
            fail(opAt, "SETITEM on a " + std::string(kindName(dict->kind)));
          dict->dict.emplace_back(key, value);
          break;
        }
        case 'u': {
          auto items = popMark();
          auto dict = top();
          if (dict->kind != Value::Kind::Dict)
            fail(opAt, "SETITEMS on a " + std::string(kindName(dict->kind)));
          addPairs(dict, items, opAt);
          break;
        }
        case 'c': {
          auto v = make(Value::Kind::Global);
          const std::string module = line();
          v->s = module + "." + line();
          push(v);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop();
          auto module = pop();
          if (name->kind != Value::Kind::String || module->kind != Value::Kind::String)
            fail(opAt, "STACK_GLOBAL needs two strings");
          auto v = make(Value::Kind::Global);
          v->s = module->s + "." + name->s;
          push(v);
          break;
        }
        case 'R': {
          auto args = pop();
          auto callable = pop();
          push(reduce(callable, args, opAt));
          break;
        }
        case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only opaque objects come from it here
          auto args = pop();
          auto cls = pop();
          auto v = make(Value::Kind::Object);
          v->s = cls->s;
          push(v);
          break;
        }
        case 'b':
          pop();
          break;  // BUILD: state of OrderedDict (_metadata) and objects: unused
        case 'Q': {
          auto pid = pop();
          push(persistentLoad(pid, opAt));
          break;
        }
        case 'q':
          memo_[static_cast<uint32_t>(byte())] = top();
          break;
        case 'r':
          memo_[static_cast<uint32_t>(le(4))] = top();
          break;
        case 0x94:
          memo_[static_cast<uint32_t>(memo_.size())] = top();
          break;
        case 'h':
          push(memoGet(static_cast<uint32_t>(byte()), opAt));
          break;
        case 'j':
          push(memoGet(static_cast<uint32_t>(le(4)), opAt));
          break;
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(opAt, std::string("unsupported pickle opcode ") + hex +
                         " (only the subset torch.save uses for state dicts is read)");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& problem) const {
    throw std::runtime_error("pth file '" + zip_.path() + "': data.pkl at byte " +
                             std::to_string(at) + ": " + problem);
  }
  [[noreturn]] void failFile(const std::string& problem) const {
    throw std::runtime_error("pth file '" + zip_.path() + "': " + problem);
  }

  ValuePtr make(Value::Kind kind) {
    made_.push_back(newValue(kind));
    return made_.back();
  }
  uint8_t byte() {
    if (pos_ >= data_.size()) fail(pos_, "the pickle ends early (truncated or corrupt)");
    return static_cast<uint8_t>(data_[pos_++]);
  }
  std::string bytes(uint64_t n) {
    if (n > data_.size() - pos_)
      fail(pos_, "a length of " + std::to_string(n) + " runs past the pickle's end (corrupt)");
    std::string s = data_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  uint64_t le(int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; ++k)
      v |= static_cast<uint64_t>(byte()) << (8 * k);
    return v;
  }
  std::string line() {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string::npos) fail(pos_, "a GLOBAL name has no line end (corrupt)");
    std::string s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  ValuePtr boolean(bool b) {
    auto v = make(Value::Kind::Bool);
    v->i = b;
    return v;
  }
  ValuePtr integer(int64_t i) {
    auto v = make(Value::Kind::Int);
    v->i = i;
    return v;
  }
  ValuePtr longInteger(uint64_t n) {
    const size_t at = pos_;
    if (n > 8) fail(at, "an integer of " + std::to_string(n) + " bytes does not fit in 64 bits");
    const std::string b = bytes(n);
    uint64_t u = 0;
    for (size_t k = 0; k < b.size(); ++k)
      u |= static_cast<uint64_t>(static_cast<uint8_t>(b[k])) << (8 * k);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(b.back()) & 0x80)) u |= ~uint64_t(0) << (8 * n);
    return integer(static_cast<int64_t>(u));
  }
  ValuePtr text(Value::Kind kind, uint64_t n) {
    auto v = make(kind);
    v->s = bytes(n);
    return v;
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr top() {
    if (stack_.size() <= floor()) fail(pos_ - 1, "the stack is empty (corrupt)");
    return stack_.back();
  }
  ValuePtr pop() {
    auto v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> popMark() {
    if (marks_.empty()) fail(pos_ - 1, "no MARK on the stack (corrupt)");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<long>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  ValuePtr memoGet(uint32_t key, size_t at) {
    const auto it = memo_.find(key);
    if (it == memo_.end())
      fail(at, "memo entry " + std::to_string(key) + " was never stored (corrupt)");
    return it->second;
  }
  void addPairs(const ValuePtr& dict, const std::vector<ValuePtr>& items, size_t at) {
    if (items.size() % 2) fail(at, "SETITEMS with an odd number of items (corrupt)");
    for (size_t k = 0; k < items.size(); k += 2)
      dict->dict.emplace_back(items[k], items[k + 1]);
  }
  ValuePtr finish() {
    if (stack_.size() != 1 || !marks_.empty())
      fail(pos_ - 1, "STOP with an unbalanced stack (corrupt)");
    return stack_.back();
  }

  std::vector<int64_t> ints(const ValuePtr& v, const std::string& what, size_t at) {
    if (v->kind != Value::Kind::Tuple && v->kind != Value::Kind::List)
      fail(at, what + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& item : v->items) {
      if (item->kind != Value::Kind::Int) fail(at, what + " holds a " + kindName(item->kind));
      out.push_back(item->i);
    }
    return out;
  }

  // The callables torch.save's pickles call: the dict classes and the tensor rebuilders. Other
  // objects (e.g. numpy scalars in a training checkpoint) stay opaque and are skipped later.
  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args, size_t at) {
    if (callable->kind != Value::Kind::Global)
      fail(at, std::string("REDUCE on a ") + kindName(callable->kind));
    if (args->kind != Value::Kind::Tuple) fail(at, "REDUCE arguments are not a tuple");
    const std::string& name = callable->s;
    if (name == "collections.OrderedDict" || name == "builtins.dict" ||
        name == "__builtin__.dict") {
      auto dict = make(Value::Kind::Dict);
      if (!args->items.empty() && args->items[0]->kind == Value::Kind::List) {
        for (const auto& pair : args->items[0]->items) {
          if (pair->kind != Value::Kind::Tuple || pair->items.size() != 2)
            fail(at, "OrderedDict item is not a pair");
          dict->dict.emplace_back(pair->items[0], pair->items[1]);
        }
      }
      return dict;
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (args->items.size() < 4)
        fail(at, name + " with " + std::to_string(args->items.size()) + " arguments");
      const auto& storage = args->items[0];
      if (storage->kind != Value::Kind::Tensor) fail(at, name + " without a storage");
      if (args->items[1]->kind != Value::Kind::Int) fail(at, "storage offset is not an int");
      return rebuildTensor(storage->tensor, args->items[1]->i,
                           ints(args->items[2], "tensor size", at),
                           ints(args->items[3], "tensor stride", at), at);
    }
    if (name == "torch._utils._rebuild_parameter" ||
        name == "torch._utils._rebuild_parameter_with_state") {
      if (args->items.empty() || args->items[0]->kind != Value::Kind::Tensor)
        fail(at, name + " without a tensor");
      return args->items[0];
    }
    auto object = make(Value::Kind::Object);
    object->s = name;
    return object;
  }

  ValuePtr rebuildTensor(const torch::Tensor& storage, int64_t offset,
                         const std::vector<int64_t>& size, const std::vector<int64_t>& stride,
                         size_t at) {
    if (size.size() != stride.size())
      fail(at, "tensor size and stride have different lengths (corrupt)");
    if (offset < 0) fail(at, "negative storage offset (corrupt)");
    // Bounds first: as_strided does not check them, and a corrupt stride must not read outside.
    int64_t numel = 1, last = offset;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0) fail(at, "negative tensor size or stride (corrupt)");
      if (size[d] > 0 && numel > std::numeric_limits<int64_t>::max() / size[d])
        fail(at, "tensor size overflows");
      numel *= size[d];
    }
    if (numel > 0) {
      for (size_t d = 0; d < size.size(); ++d) {
        if (stride[d] > 0 && size[d] - 1 > (std::numeric_limits<int64_t>::max() - last) / stride[d])
          fail(at, "tensor stride overflows (corrupt)");
        last += (size[d] - 1) * stride[d];
      }
      if (last >= storage.numel()) {
        fail(at, "a tensor of size " + c10::str(c10::IntArrayRef(size)) + " reaches element " +
                     std::to_string(last) + " of a storage of " + std::to_string(storage.numel()) +
                     " elements (corrupt)");
      }
    }
    auto v = make(Value::Kind::Tensor);
    v->tensor = numel == 0
                    ? torch::empty(size, storage.options())
                    : storage.as_strided(size, stride, offset).clone(at::MemoryFormat::Contiguous);
    return v;
  }

  // ('storage', <StorageType global>, key, location, numel) -> the whole storage as a 1-D tensor,
  // read from <archive>/data/<key>. Storages shared by several tensors are read once.
  ValuePtr persistentLoad(const ValuePtr& pid, size_t at) {
    if (pid->kind != Value::Kind::Tuple || pid->items.size() < 5 ||
        pid->items[0]->kind != Value::Kind::String || pid->items[0]->s != "storage") {
      fail(at, "a persistent id that is not a ('storage', ...) tuple");
    }
    const auto& typeValue = pid->items[1];
    const auto& key = pid->items[2];
    const auto& numelValue = pid->items[4];
    if (typeValue->kind != Value::Kind::Global || key->kind != Value::Kind::String ||
        numelValue->kind != Value::Kind::Int || numelValue->i < 0) {
      fail(at, "a malformed storage persistent id");
    }
    const auto cached = storages_.find(key->s);
    if (cached != storages_.end()) return cached->second;
    const std::string typeName = typeValue->s.substr(typeValue->s.rfind('.') + 1);
    const StorageType* type = nullptr;
    for (const auto& t : kStorageTypes) {
      if (typeName == t.name) type = &t;
    }
    if (!type) {
      failFile("storage '" + key->s + "' has the unsupported type " + typeValue->s +
               " (supported: float64/32/16, bfloat16, int64/32/16/8, uint8, bool)");
    }
    const std::string entryName = prefix_ + "data/" + key->s;
    const auto* entry = zip_.find(entryName);
    if (!entry) failFile("the storage entry '" + entryName + "' is missing (truncated or corrupt)");
    const uint64_t numel = static_cast<uint64_t>(numelValue->i);
    if (entry->uncompressedSize / type->size < numel) {
      failFile("storage '" + entryName + "' has " + std::to_string(entry->uncompressedSize) +
               " bytes, too few for " + std::to_string(numel) + " elements of " + typeName);
    }
    const std::string raw = zip_.read(*entry);
    auto v = make(Value::Kind::Tensor);
    v->tensor =
        torch::empty({static_cast<int64_t>(numel)}, torch::TensorOptions().dtype(type->type));
    if (numel) std::memcpy(v->tensor.data_ptr(), raw.data(), numel * type->size);
    storages_.emplace(key->s, v);
    return v;
  }

  const ZipArchive& zip_;
  std::string prefix_;
  std::string data_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
  std::map<std::string, ValuePtr> storages_;
  std::vector<ValuePtr> made_;  // every value made, for the destructor
};

void collect(const ValuePtr& dict, const std::string& prefix, int depth,
             PthReader::NamedTensors& out) {
  if (depth > 8) return;  // memo references can build cycles; state dicts are shallow
  for (const auto& [key, value] : dict->dict) {
    std::string name;
    if (key->kind == Value::Kind::String) {
      name = key->s;
    } else if (key->kind == Value::Kind::Int) {
      name = std::to_string(key->i);
    } else {
      continue;
    }
    if (value->kind == Value::Kind::Tensor) {
      out.emplace_back(prefix + name, value->tensor);
    } else if (value->kind == Value::Kind::Dict) {
      collect(value, prefix + name + ".", depth + 1, out);
    }
  }
}

}  // namespace

PthReader::NamedTensors PthReader::read(const std::string& path) {
  if (!ZipArchive::hasZipSignature(path)) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("pth file '" + path + "' cannot be opened");
    const int first = in.get();
    if (first == 0x80) {
      throw std::runtime_error(
          "pth file '" + path +
          "' uses torch.save's legacy (pre-1.6) format, which is not supported: re-save it with "
          "a recent PyTorch (torch.save(torch.load(f), f)) or convert it to safetensors");
    }
    throw std::runtime_error("pth file '" + path + "' is not a torch.save zip archive");
  }
  const ZipArchive zip(path);
  // Entries live under one top folder named after the file ("model_final/data.pkl").
  const ZipArchive::Entry* pickle = nullptr;
  for (const auto& entry : zip.entries()) {
    const std::string suffix = "data.pkl";
    if (entry.name.size() >= suffix.size() &&
        entry.name.compare(entry.name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        (entry.name.size() == suffix.size() ||
         entry.name[entry.name.size() - suffix.size() - 1] == '/')) {
      pickle = &entry;
      break;
    }
  }
  if (!pickle)
    throw std::runtime_error("pth file '" + path +
                             "' has no data.pkl entry: not a torch.save file");
  const std::string prefix = pickle->name.substr(0, pickle->name.size() - 8);
  if (const auto* order = zip.find(prefix + "byteorder")) {
    const std::string value = zip.read(*order);
    if (value != "little") {
      throw std::runtime_error("pth file '" + path + "' stores '" + value +
                               "'-endian data; only little-endian files are supported");
    }
  }
  Unpickler unpickler(zip, prefix, zip.read(*pickle));
  const ValuePtr root = unpickler.run();
  if (root->kind != Value::Kind::Dict) {
    throw std::runtime_error("pth file '" + path + "' holds a " + kindName(root->kind) +
                             ", not a state dict (a dict of tensors)");
  }
  NamedTensors out;
  collect(root, "", 0, out);
  return out;
}

}  // namespace sae
