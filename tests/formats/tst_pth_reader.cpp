// PthReader and ZipArchive: state dicts written by torch.save (tests/reference/pth_reference.py)
// read back value for value (every dtype, views with offsets and strides, shared storages,
// nested dicts, deflated entries, ZIP64 records), and truncated, bit-flipped or otherwise broken
// files give an error naming the file, never a crash or a hang.
#include <QTemporaryDir>
#include <QtTest>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <zlib.h>
#include <nlohmann/json.hpp>

#include "formats/PthReader.h"
#include "formats/ZipArchive.h"
#include "support/ByteFiles.h"
#include "support/TestText.h"

using sae::PthReader;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kFixtures = SAEWB_FIXTURES_DIR "/pth/";

using saetest::readBytes;
using saetest::writeBytes;

void put16(std::string& s, uint32_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>((v >> 8) & 0xff));
}
void put32(std::string& s, uint32_t v) {
  put16(s, v & 0xffff);
  put16(s, v >> 16);
}

// A minimal stored-entry zip writer (no ZIP64), to wrap corrupted pickles in archives whose
// CRCs are right, so the unpickler itself meets the damage.
std::string makeZip(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string body, directory;
  for (const auto& [name, data] : entries) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    const uint32_t offset = static_cast<uint32_t>(body.size());
    std::string local;
    put32(local, 0x04034b50);
    put16(local, 20), put16(local, 0), put16(local, 0), put16(local, 0), put16(local, 0);
    put32(local, crc), put32(local, data.size()), put32(local, data.size());
    put16(local, name.size()), put16(local, 0);
    body += local + name + data;
    std::string central;
    put32(central, 0x02014b50);
    put16(central, 20), put16(central, 20), put16(central, 0), put16(central, 0);
    put16(central, 0), put16(central, 0);
    put32(central, crc), put32(central, data.size()), put32(central, data.size());
    put16(central, name.size()), put16(central, 0), put16(central, 0), put16(central, 0);
    put16(central, 0), put32(central, 0), put32(central, offset);
    directory += central + name;
  }
  std::string end;
  put32(end, 0x06054b50);
  put16(end, 0), put16(end, 0), put16(end, entries.size()), put16(end, entries.size());
  put32(end, directory.size()), put32(end, body.size()), put16(end, 0);
  return body + directory + end;
}

torch::ScalarType dtypeByName(const std::string& name) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"float64", torch::kFloat64},   {"float32", torch::kFloat32}, {"float16", torch::kFloat16},
      {"bfloat16", torch::kBFloat16}, {"int64", torch::kInt64},     {"int32", torch::kInt32},
      {"int16", torch::kInt16},       {"int8", torch::kInt8},       {"uint8", torch::kUInt8},
      {"bool", torch::kBool}};
  return types.at(name);
}

bool sameTensors(const PthReader::NamedTensors& a, const PthReader::NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || a[i].second.scalar_type() != b[i].second.scalar_type() ||
        a[i].second.sizes() != b[i].second.sizes() || !torch::equal(a[i].second, b[i].second))
      return false;
  }
  return true;
}

}  // namespace

class TestPthReader : public QObject {
  Q_OBJECT

 private:
  // Reads `file` and compares with expected.json: names in order, dtype, shape, every value.
  void checkAgainstExpected(const std::string& file) {
    const auto expected = nlohmann::json::parse(readBytes(kFixtures + "expected.json")).at(file);
    const auto tensors = PthReader::read(kFixtures + file);
    QCOMPARE(tensors.size(), expected.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& [name, tensor] = tensors[i];
      const auto& e = expected[i];
      QCOMPARE(QString::fromStdString(name), QString::fromStdString(e[0].get<std::string>()));
      QVERIFY2(tensor.scalar_type() == dtypeByName(e[1].get<std::string>()), name.c_str());
      QCOMPARE(tensor.sizes().vec(), e[2].get<std::vector<int64_t>>());
      QVERIFY(tensor.is_contiguous());
      const auto flat = tensor.flatten();
      QCOMPARE(flat.numel(), static_cast<int64_t>(e[3].size()));
      for (int64_t k = 0; k < flat.numel(); ++k) {
        const auto& v = e[3][static_cast<size_t>(k)];
        if (tensor.is_floating_point()) {
          const double actual = flat[k].item<double>();
          QVERIFY2(
              actual == v.get<double>() && std::signbit(actual) == std::signbit(v.get<double>()),
              (name + "[" + std::to_string(k) + "]").c_str());
        } else if (tensor.scalar_type() == torch::kBool) {
          QCOMPARE(flat[k].item<bool>(), v.get<bool>());
        } else {
          QCOMPARE(flat[k].item<int64_t>(), v.get<int64_t>());
        }
      }
    }
  }

 private Q_SLOTS:
  void readsEveryDtypeViewAndNestedDict() { checkAgainstExpected("dtypes.pth"); }
  void readsDeflatedEntries() { checkAgainstExpected("dtypes_deflated.pth"); }
  void readsModuleStateDictWithMetadata() { checkAgainstExpected("linear.pth"); }
  void readsPlainDict() { checkAgainstExpected("plain_dict.pth"); }

  void viewsKeepTheirOffsetsAndStrides() {
    const auto tensors = PthReader::read(kFixtures + "dtypes.pth");
    std::map<std::string, torch::Tensor> byName(tensors.begin(), tensors.end());
    const auto base = torch::arange(12, torch::kFloat32).reshape({3, 4}) / 4;
    QVERIFY(torch::equal(byName.at("transposed"), base.t()));
    QVERIFY(torch::equal(byName.at("row1"), base[1]));
    QVERIFY(torch::equal(byName.at("tail"), base.slice(0, 1).slice(1, 2)));
    QCOMPARE(byName.at("scalar").dim(), int64_t(0));
    QCOMPARE(byName.at("scalar").item<float>(), -1e5f);
  }

  void zipDirectoryHasZip64RecordsAndAlignedEntries() {
    // torch.save writes ZIP64 end records; the reader must go through them.
    const std::string bytes = readBytes(kFixtures + "dtypes.pth");
    QVERIFY(bytes.find(std::string("PK\x06\x06", 4)) != std::string::npos);
    const sae::ZipArchive zip(kFixtures + "dtypes.pth");
    QVERIFY(zip.find("dtypes/data.pkl") != nullptr);
    QVERIFY(zip.find("dtypes/version") != nullptr);
    QVERIFY(zip.find("nope") == nullptr);
  }

  void refusesLegacyNonZipAndNonDicts() {
    const auto legacy = errorOf([] { PthReader::read(kFixtures + "legacy.pth"); });
    QVERIFY2(contains(legacy, "legacy") && contains(legacy, "legacy.pth"), legacy.c_str());
    const auto list = errorOf([] { PthReader::read(kFixtures + "list.pth"); });
    QVERIFY2(contains(list, "list") && contains(list, "not a state dict"), list.c_str());
    QTemporaryDir dir;
    const std::string text = dir.filePath("text.pth").toStdString();
    writeBytes(text, "hello world, not a checkpoint");
    const auto notZip = errorOf([&] { PthReader::read(text); });
    QVERIFY2(contains(notZip, "not a torch.save zip archive") && contains(notZip, text),
             notZip.c_str());
    const auto missing =
        errorOf([&] { PthReader::read(dir.filePath("missing.pth").toStdString()); });
    QVERIFY2(contains(missing, "missing.pth"), missing.c_str());
  }

  void truncatedFilesGiveErrors() {
    QTemporaryDir dir;
    const std::string copy = dir.filePath("t.pth").toStdString();
    for (const char* file : {"dtypes.pth", "linear.pth"}) {
      const std::string bytes = readBytes(kFixtures + file);
      for (size_t length = 0; length < bytes.size(); length += (length < 64 ? 1 : 7)) {
        writeBytes(copy, bytes.substr(0, length));
        const auto message = errorOf([&] { PthReader::read(copy); });
        QVERIFY2(contains(message, copy), (std::to_string(length) + ": " + message).c_str());
      }
    }
  }

  void bitFlippedFilesGiveErrorsOrTheSameTensors() {
    // The zip CRCs cover the pickle and the storages; a flip elsewhere (timestamps, attributes)
    // may be harmless, but then the tensors must be the original ones.
    QTemporaryDir dir;
    const std::string copy = dir.filePath("f.pth").toStdString();
    const std::string bytes = readBytes(kFixtures + "linear.pth");
    const auto original = PthReader::read(kFixtures + "linear.pth");
    int errors = 0;
    for (size_t at = 0; at < bytes.size(); ++at) {
      std::string flipped = bytes;
      flipped[at] = static_cast<char>(flipped[at] ^ (1 << (at % 8)));
      writeBytes(copy, flipped);
      try {
        const auto tensors = PthReader::read(copy);
        QVERIFY2(sameTensors(tensors, original), ("flip at " + std::to_string(at)).c_str());
      } catch (const std::runtime_error& e) {
        QVERIFY2(contains(e.what(), copy), e.what());
        ++errors;
      }
    }
    QVERIFY(errors > static_cast<int>(bytes.size() / 2));
  }

  void corruptPicklesInValidArchivesGiveErrors() {
    // Re-wrap data.pkl with correct CRCs so that every flip and cut reaches the unpickler.
    const sae::ZipArchive zip(kFixtures + "dtypes.pth");
    std::vector<std::pair<std::string, std::string>> entries;
    size_t pickleIndex = 0;
    for (const auto& entry : zip.entries()) {
      if (entry.name == "dtypes/data.pkl") pickleIndex = entries.size();
      entries.emplace_back(entry.name, zip.read(entry));
    }
    const std::string pickle = entries[pickleIndex].second;
    QTemporaryDir dir;
    const std::string copy = dir.filePath("p.pth").toStdString();
    writeBytes(copy, makeZip(entries));
    QVERIFY(sameTensors(PthReader::read(copy), PthReader::read(kFixtures + "dtypes.pth")));
    int errors = 0, runs = 0;
    for (size_t at = 0; at < pickle.size(); ++at) {
      for (int variant = 0; variant < 2; ++variant) {
        auto damaged = entries;
        if (variant == 0) {
          damaged[pickleIndex].second[at] ^= static_cast<char>(1 << (at % 8));
        } else if (at % 5 == 0) {
          damaged[pickleIndex].second.resize(at);
        } else {
          continue;
        }
        writeBytes(copy, makeZip(damaged));
        ++runs;
        try {
          PthReader::read(copy);  // some flips change a name or a value legitimately
        } catch (const std::runtime_error& e) {
          QVERIFY2(contains(e.what(), copy), e.what());
          ++errors;
        }
      }
    }
    QVERIFY2(errors > runs / 4, (std::to_string(errors) + " of " + std::to_string(runs)).c_str());
  }
};

QTEST_APPLESS_MAIN(TestPthReader)
#include "tst_pth_reader.moc"
