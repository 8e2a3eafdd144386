#include "formats/Safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "config/AtomicFile.h"

// Tensor bytes are copied as they are: the format is little-endian, and so must the host be.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes little-endian");

namespace sae {

namespace {

// The reference implementation (safetensors/src/tensor.rs) refuses larger headers; a corrupt
// length field must not make us allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

struct Dtype {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
};

constexpr Dtype kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const Dtype* dtypeByName(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const Dtype* dtypeByType(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (type == d.type) return &d;
  }
  return nullptr;
}

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error("safetensors file '" + path + "': " + problem);
}

std::string shapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A JSON value that must be a non-negative integer fitting in int64 (shape entries, offsets).
uint64_t nonNegativeInteger(const nlohmann::ordered_json& v, const std::string& path,
                            const std::string& what) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return u;
  } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(v.get<int64_t>());
  }
  fail(path, what + " must be a non-negative integer, found " + v.dump());
}

struct Header {
  std::vector<Safetensors::TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t dataStart = 0;  // file offset of the data buffer
};

Header parseHeader(const std::string& path, std::ifstream& in) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto fileSize = static_cast<uint64_t>(fs::file_size(path, ec));
  if (ec) fail(path, "cannot read the file size: " + ec.message());
  if (fileSize < 8) {
    fail(path, "file is " + std::to_string(fileSize) +
                   " bytes long, shorter than the 8-byte header length");
  }
  unsigned char lengthBytes[8];
  if (!in.read(reinterpret_cast<char*>(lengthBytes), 8)) fail(path, "cannot read header length");
  uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i)
    headerLength = (headerLength << 8) | lengthBytes[i];
  if (headerLength > kMaxHeaderBytes) {
    fail(path, "header length " + std::to_string(headerLength) + " exceeds the 100 MB limit");
  }
  if (headerLength > fileSize - 8) {
    fail(path, "header length " + std::to_string(headerLength) + " runs past the end of the " +
                   std::to_string(fileSize) + "-byte file");
  }
  std::string text(headerLength, '\0');
  if (headerLength && !in.read(text.data(), static_cast<std::streamsize>(headerLength))) {
    fail(path, "cannot read the header");
  }

  nlohmann::ordered_json json;
  try {
    json = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!json.is_object()) fail(path, "header is not a JSON object");

  Header header;
  header.dataStart = 8 + headerLength;
  const uint64_t bufferSize = fileSize - header.dataStart;
  for (const auto& [name, entry] : json.items()) {
    if (name == kMetadataKey) {
      if (!entry.is_object()) fail(path, "__metadata__ is not an object of strings");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          fail(path, "__metadata__ value for '" + key + "' is not a string: " + value.dump());
        }
        header.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!entry.is_object()) fail(path, where + " entry is not an object: " + entry.dump());
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) {
      fail(path, where + " has no dtype string");
    }
    if (!entry.contains("shape") || !entry["shape"].is_array()) {
      fail(path, where + " has no shape array");
    }
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2) {
      fail(path, where + " has no [begin, end] data_offsets");
    }
    Safetensors::TensorInfo info;
    info.name = name;
    info.dtype = entry["dtype"].get<std::string>();
    const Dtype* dtype = dtypeByName(info.dtype);
    if (!dtype) fail(path, where + " has unsupported dtype '" + info.dtype + "'");
    info.scalarType = dtype->type;
    uint64_t bytes = dtype->size;
    bool overflow = false;
    for (const auto& dim : entry["shape"]) {
      const uint64_t d = nonNegativeInteger(dim, path, where + " shape entry");
      info.shape.push_back(static_cast<int64_t>(d));
      overflow = overflow || __builtin_mul_overflow(bytes, d, &bytes);
    }
    info.begin = nonNegativeInteger(entry["data_offsets"][0], path, where + " data offset");
    info.end = nonNegativeInteger(entry["data_offsets"][1], path, where + " data offset");
    if (info.end < info.begin) {
      fail(path, where + " has data_offsets [" + std::to_string(info.begin) + ", " +
                     std::to_string(info.end) + "] that end before they begin");
    }
    if (info.end > bufferSize) {
      fail(path, where + " data_offsets [" + std::to_string(info.begin) + ", " +
                     std::to_string(info.end) + "] reach beyond the " + std::to_string(bufferSize) +
                     "-byte data buffer (truncated file?)");
    }
    if (overflow || bytes != info.end - info.begin) {
      fail(path, where + " shape " + shapeString(info.shape) + " of " + info.dtype + " needs " +
                     (overflow ? std::string("more than 2^64") : std::to_string(bytes)) +
                     " bytes but its data_offsets span " + std::to_string(info.end - info.begin));
    }
    header.tensors.push_back(std::move(info));
  }

  // Like the reference reader: sorted by offset, the tensors must tile the buffer exactly.
  std::vector<const Safetensors::TensorInfo*> sorted;
  for (const auto& t : header.tensors)
    sorted.push_back(&t);
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  for (const auto* t : sorted) {
    if (t->begin < expected) {
      fail(path, "tensor '" + t->name + "' data overlaps the previous tensor (starts at " +
                     std::to_string(t->begin) + ", previous ends at " + std::to_string(expected) +
                     ")");
    }
    if (t->begin > expected) {
      fail(path, "gap in the data buffer before tensor '" + t->name + "' (bytes " +
                     std::to_string(expected) + " to " + std::to_string(t->begin) +
                     " belong to no tensor)");
    }
    expected = t->end;
  }
  if (expected != bufferSize) {
    fail(path,
         std::to_string(bufferSize - expected) + " trailing bytes after the last tensor's data");
  }
  return header;
}

std::ifstream openForReading(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  return in;
}

torch::Tensor readData(const std::string& path, std::ifstream& in, const Header& header,
                       const Safetensors::TensorInfo& info) {
  torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(info.scalarType));
  const uint64_t bytes = info.end - info.begin;
  if (bytes == 0) return t;
  if (bytes > static_cast<uint64_t>(std::numeric_limits<std::streamsize>::max())) {
    fail(path, "tensor '" + info.name + "' is too large to read");
  }
  in.seekg(static_cast<std::streamoff>(header.dataStart + info.begin));
  if (!in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes))) {
    fail(path, "cannot read the data of tensor '" + info.name + "' (file changed while reading?)");
  }
  if (info.scalarType == torch::kBool) {
    // Any byte but 0 or 1 in a torch bool tensor is undefined behaviour downstream.
    const auto* p = static_cast<const unsigned char*>(t.data_ptr());
    if (std::any_of(p, p + bytes, [](unsigned char b) { return b > 1; })) {
      fail(path, "BOOL tensor '" + info.name + "' holds bytes other than 0 and 1");
    }
  }
  return t;
}

}  // namespace

std::vector<Safetensors::TensorInfo> Safetensors::readHeader(
    const std::string& path, std::map<std::string, std::string>* metadata) {
  std::ifstream in = openForReading(path);
  Header header = parseHeader(path, in);
  if (metadata) *metadata = std::move(header.metadata);
  return std::move(header.tensors);
}

Safetensors::NamedTensors Safetensors::read(const std::string& path,
                                            std::map<std::string, std::string>* metadata) {
  std::ifstream in = openForReading(path);
  const Header header = parseHeader(path, in);
  NamedTensors result;
  for (const auto& info : header.tensors) {
    result.emplace_back(info.name, readData(path, in, header, info));
  }
  if (metadata) *metadata = header.metadata;
  return result;
}

torch::Tensor Safetensors::readTensor(const std::string& path, const std::string& key) {
  std::ifstream in = openForReading(path);
  const Header header = parseHeader(path, in);
  for (const auto& info : header.tensors) {
    if (info.name == key) return readData(path, in, header, info);
  }
  std::string present;
  for (const auto& info : header.tensors)
    present += (present.empty() ? "'" : ", '") + info.name + "'";
  fail(path, "has no tensor '" + key +
                 "' (tensors present: " + (present.empty() ? std::string("none") : present) + ")");
}

void Safetensors::write(const std::string& path, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& meta = header[kMetadataKey] = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata)
      meta[key] = value;
  }
  std::vector<torch::Tensor> data;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) fail(path, "'__metadata__' cannot name a tensor");
    if (!names.insert(name).second) fail(path, "tensor name '" + name + "' given twice");
    if (!tensor.defined()) fail(path, "tensor '" + name + "' is undefined");
    const Dtype* dtype = dtypeByType(tensor.scalar_type());
    if (!dtype) {
      fail(path, "tensor '" + name + "' has dtype " +
                     std::string(c10::toString(tensor.scalar_type())) +
                     ", which safetensors files here do not store");
    }
    torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * dtype->size;
    header[name] = {{"dtype", dtype->name},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(cpu));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail(path,
         std::string("cannot encode the header (names and metadata must be UTF-8): ") + e.what());
  }
  // Spaces up to a multiple of 8 keep the data buffer 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string bytes;
  bytes.reserve(8 + text.size() + offset);
  uint64_t length = text.size();
  for (int i = 0; i < 8; ++i, length >>= 8)
    bytes.push_back(static_cast<char>(length & 0xff));
  bytes += text;
  for (const auto& t : data) {
    if (t.numel() == 0) continue;
    bytes.append(static_cast<const char*>(t.data_ptr()),
                 static_cast<size_t>(t.numel()) * t.element_size());
  }
  AtomicFile::write(path, bytes);
}

}  // namespace sae
