// Safetensors read/write: round trips for every dtype, files written by an independent Python
// writer (tests/reference/safetensors_reference.py) read back value for value, and every kind of
// malformed file (hand-built, truncated, bit-flipped) rejected with an error naming the file.
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "formats/Safetensors.h"
#include "support/ByteFiles.h"
#include "support/TestText.h"

using sae::Safetensors;
using saetest::errorOf;

namespace {

const std::string kFixtures = SAEWB_FIXTURES_DIR "/formats/";

using saetest::readBytes;
using saetest::writeBytes;

std::string lengthPrefix(uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i, n >>= 8)
    s.push_back(static_cast<char>(n & 0xff));
  return s;
}

// A file from a header text and a data buffer (the header is not padded: readers must cope).
std::string rawFile(const std::string& header, const std::string& data) {
  return lengthPrefix(header.size()) + header + data;
}

template <typename T>
std::vector<T> values(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

std::vector<float> asFloats(const torch::Tensor& t) {
  return values<float>(t.to(torch::kFloat32));
}

}  // namespace

class TestSafetensors : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  std::string path(const std::string& name) const {
    return dir_.filePath(QString::fromStdString(name)).toStdString();
  }
  void expectError(const std::string& file, const std::string& needle) {
    const std::string message = errorOf([&] { Safetensors::read(file); });
    QVERIFY2(!message.empty(), ("no error for " + file + " (expected '" + needle + "')").c_str());
    QVERIFY2(message.find(file) != std::string::npos, message.c_str());
    QVERIFY2(message.find(needle) != std::string::npos, (needle + " not in: " + message).c_str());
  }

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
    QVERIFY(dir_.isValid());
  }

  void roundTripAllDtypes() {
    torch::manual_seed(0);
    Safetensors::NamedTensors in = {
        {"f64", torch::randn({3, 4}, torch::kFloat64)},
        {"f32", torch::randn({2, 3, 5})},
        {"f16", torch::randn({7}).to(torch::kFloat16)},
        {"bf16", torch::randn({4, 2}).to(torch::kBFloat16)},
        {"i64", torch::randint(std::numeric_limits<int64_t>::min(),
                               std::numeric_limits<int64_t>::max(), {6}, torch::kInt64)},
        {"i32", torch::randint(-100000, 100000, {3, 3}, torch::kInt32)},
        {"i16", torch::randint(-30000, 30000, {5}, torch::kInt16)},
        {"i8", torch::randint(-128, 127, {9}, torch::kInt8)},
        {"u8", torch::randint(0, 255, {2, 2}, torch::kUInt8)},
        {"bool", torch::rand({3, 2}) > 0.5},
        {"scalar", torch::tensor(3.5)},
        {"empty", torch::empty({0, 3})},
        {"transposed", torch::arange(12, torch::kFloat32).reshape({3, 4}).t()},  // non-contiguous
    };
    const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcode"}};
    const std::string file = path("roundtrip.safetensors");
    Safetensors::write(file, in, meta);

    std::map<std::string, std::string> metaOut;
    const auto out = Safetensors::read(file, &metaOut);
    QCOMPARE(out.size(), in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      QCOMPARE(out[i].first, in[i].first);  // header order = the order given
      QCOMPARE(out[i].second.scalar_type(), in[i].second.scalar_type());
      QCOMPARE(out[i].second.sizes().vec(), in[i].second.sizes().vec());
      QVERIFY2(torch::equal(out[i].second, in[i].second), in[i].first.c_str());
    }
    QVERIFY(metaOut == meta);

    // Layout: header length a multiple of 8, padded with spaces, __metadata__ then tensors in
    // the given order, no trailing bytes.
    const std::string bytes = readBytes(file);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
      n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    QCOMPARE(n % 8, uint64_t{0});
    const std::string header = bytes.substr(8, n);
    QVERIFY(header.find_last_not_of(' ') + 1 >= header.size() - 7);
    const auto json = nlohmann::ordered_json::parse(header);
    std::vector<std::string> keys;
    for (const auto& item : json.items())
      keys.push_back(item.key());
    QCOMPARE(keys.front(), std::string("__metadata__"));
    for (size_t i = 0; i < in.size(); ++i)
      QCOMPARE(keys[i + 1], in[i].first);
    QCOMPARE(json["f32"]["data_offsets"][1].get<uint64_t>() -
                 json["f32"]["data_offsets"][0].get<uint64_t>(),
             uint64_t{2 * 3 * 5 * 4});
  }

  // The other direction: an independent reader (plain Python struct/json) parses what we write
  // to the same names, dtypes, shapes and bytes.
  void independentReaderReadsOurFiles() {
    const QString python =
        QFileInfo::exists("/usr/bin/python3") ? "/usr/bin/python3" : QStringLiteral("python3");
    torch::manual_seed(4);
    const Safetensors::NamedTensors in = {
        {"W_enc", torch::randn({3, 5})},
        {"b", torch::randn({5}).to(torch::kBFloat16)},
        {"h", torch::randn({2, 2}).to(torch::kFloat16)},
        {"steps", torch::tensor(int64_t{123456789})},
        {"mask", torch::rand({4}) > 0.5},
        {"none", torch::empty({0})},
    };
    const std::string file = path("for-python.safetensors");
    Safetensors::write(file, in, {{"k", "v"}});
    QProcess process;
    process.start(python, {SAEWB_SOURCE_DIR "/tests/reference/safetensors_reference.py", "--dump",
                           QString::fromStdString(file)});
    if (!process.waitForStarted()) QSKIP("no python3 to run the independent reader");
    QVERIFY(process.waitForFinished(60000));
    QCOMPARE(process.exitCode(), 0);
    const auto json = nlohmann::json::parse(process.readAllStandardOutput().toStdString());
    QCOMPARE(json["header_length"].get<uint64_t>() % 8, uint64_t{0});
    QCOMPARE(json["keys"][0].get<std::string>(), std::string("__metadata__"));
    const auto& tensors = json["tensors"];
    QCOMPARE(tensors.size(), in.size());
    const char* dtypes[] = {"F32", "BF16", "F16", "I64", "BOOL", "F32"};
    for (size_t i = 0; i < in.size(); ++i) {
      const torch::Tensor t = in[i].second.contiguous();
      QCOMPARE(tensors[i][0].get<std::string>(), in[i].first);
      QCOMPARE(tensors[i][1].get<std::string>(), std::string(dtypes[i]));
      QCOMPARE(tensors[i][2].get<std::vector<int64_t>>(), t.sizes().vec());
      const QByteArray raw(static_cast<const char*>(t.data_ptr()),
                           static_cast<int>(t.numel() * t.element_size()));
      QCOMPARE(QByteArray::fromStdString(tensors[i][3].get<std::string>()), raw.toHex());
    }
  }

  void writeOverwritesAndLeavesNoTemporaries() {
    const std::string sub = path("overwrite");
    const std::string file = sub + "/w.safetensors";  // missing parent folder is created
    Safetensors::write(file, {{"a", torch::ones({2})}});
    Safetensors::write(file, {{"b", torch::zeros({3})}});
    const auto out = Safetensors::read(file);
    QCOMPARE(out.size(), size_t{1});
    QCOMPARE(out[0].first, std::string("b"));
    QCOMPARE(std::distance(std::filesystem::directory_iterator(sub), {}), std::ptrdiff_t{1});
  }

  void writeRejectsBadInput() {
    const std::string file = path("bad-write.safetensors");
    QVERIFY(errorOf([&] {
              Safetensors::write(file, {{"a", torch::ones({1})}, {"a", torch::ones({1})}});
            }).find("twice") != std::string::npos);
    QVERIFY(errorOf([&] {
              Safetensors::write(file, {{"__metadata__", torch::ones({1})}});
            }).find("__metadata__") != std::string::npos);
    QVERIFY(errorOf([&] {
              Safetensors::write(file, {{"c", torch::ones({1}, torch::kComplexFloat)}});
            }).find(file) != std::string::npos);
    QVERIFY(!std::filesystem::exists(file));
  }

  // Values written by the Python reference (struct-encoded); the literals mirror its lists.
  void readsPythonWrittenAllDtypes() {
    std::map<std::string, std::string> meta;
    const auto t = Safetensors::read(kFixtures + "all_dtypes.safetensors", &meta);
    QCOMPARE(meta.at("format"), std::string("pt"));
    QCOMPARE(meta.at("written_by"), std::string("safetensors_reference.py"));
    const std::vector<std::string> names = {"f64", "f32", "f16", "bf16", "i64",    "i32",
                                            "i16", "i8",  "u8",  "bool", "scalar", "empty"};
    QCOMPARE(t.size(), names.size());
    for (size_t i = 0; i < names.size(); ++i)
      QCOMPARE(t[i].first, names[i]);

    QCOMPARE(t[0].second.scalar_type(), torch::kFloat64);
    QCOMPARE(t[0].second.sizes().vec(), (std::vector<int64_t>{2, 3}));
    QVERIFY(values<double>(t[0].second) ==
            (std::vector<double>{0.0, -1.5, 3.141592653589793, 1e300, -2.5e-310, 6.02214076e23}));

    QCOMPARE(t[1].second.sizes().vec(), (std::vector<int64_t>{3, 2}));
    const auto f32 = values<float>(t[1].second);
    QVERIFY(f32 == (std::vector<float>{1.0f, -2.0f, 0.1f, std::numeric_limits<float>::max(),
                                       std::numeric_limits<float>::denorm_min(), -0.0f}));
    QVERIFY(std::signbit(f32[5]));

    QCOMPARE(t[2].second.scalar_type(), torch::kFloat16);
    const auto f16 = asFloats(t[2].second);
    QVERIFY(f16 == (std::vector<float>{1.0f, -2.5f, 65504.0f, 6.103515625e-05f,
                                       5.960464477539063e-08f, INFINITY, -0.0f, 0.333251953125f}));
    QVERIFY(std::signbit(f16[6]));

    QCOMPARE(t[3].second.scalar_type(), torch::kBFloat16);
    QCOMPARE(t[3].second.sizes().vec(), (std::vector<int64_t>{2, 2}));
    QVERIFY(asFloats(t[3].second) ==
            (std::vector<float>{1.0f, -3.140625f, 9.183549615799121e-41f, 3.3895313892515355e38f}));

    QVERIFY(values<int64_t>(t[4].second) ==
            (std::vector<int64_t>{0, -1, std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::min(), int64_t{1} << 40}));
    QVERIFY(values<int32_t>(t[5].second) ==
            (std::vector<int32_t>{2147483647, -2147483647 - 1, 7, -7}));
    QVERIFY(values<int16_t>(t[6].second) == (std::vector<int16_t>{32767, -32768, 300}));
    QVERIFY(values<int8_t>(t[7].second) == (std::vector<int8_t>{127, -128, 0, -1}));
    QVERIFY(values<uint8_t>(t[8].second) == (std::vector<uint8_t>{0, 255, 128}));
    QCOMPARE(t[9].second.scalar_type(), torch::kBool);
    QCOMPARE(t[9].second.sizes().vec(), (std::vector<int64_t>{2, 1, 3}));
    QVERIFY(values<bool>(t[9].second) ==
            (std::vector<bool>{true, false, true, true, false, false}));
    QCOMPARE(t[10].second.dim(), int64_t{0});
    QCOMPARE(t[10].second.item<float>(), 42.5f);
    QCOMPARE(t[11].second.sizes().vec(), (std::vector<int64_t>{0, 4}));
  }

  void readsUnpaddedFileInHeaderOrder() {
    const std::string file = kFixtures + "unpadded.safetensors";
    std::map<std::string, std::string> meta = {{"stale", "x"}};
    const auto t = Safetensors::read(file, &meta);
    QVERIFY(meta.empty());
    QCOMPARE(t.size(), size_t{3});
    QCOMPARE(t[0].first, std::string("weights"));
    QCOMPARE(t[1].first, std::string("flag"));
    QCOMPARE(t[2].first, std::string("i64"));
    QVERIFY(values<float>(t[0].second) == (std::vector<float>{0.5f, -0.25f, 8.0f, 1e-3f}));
    QVERIFY(values<bool>(t[1].second) == std::vector<bool>{true});
    QVERIFY(values<int64_t>(t[2].second) == (std::vector<int64_t>{5, -6}));

    const auto header = Safetensors::readHeader(file);
    QCOMPARE(header.size(), size_t{3});
    QCOMPARE(header[0].dtype, std::string("F32"));
    QCOMPARE(header[0].begin, uint64_t{16});  // i64 comes first in the buffer
    QCOMPARE(header[0].end, uint64_t{32});
    QCOMPARE(header[2].begin, uint64_t{0});

    QVERIFY(values<float>(Safetensors::readTensor(file, "weights"))[2] == 8.0f);
    const std::string missing = errorOf([&] { Safetensors::readTensor(file, "nope"); });
    QVERIFY2(missing.find(file) != std::string::npos, missing.c_str());
    QVERIFY2(missing.find("'nope'") != std::string::npos, missing.c_str());
    QVERIFY2(missing.find("'weights', 'flag', 'i64'") != std::string::npos, missing.c_str());
  }

  void rejectsMalformedFiles_data() {
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("needle");
    auto add = [](const char* name, const std::string& bytes, const char* needle) {
      QTest::newRow(name) << QByteArray(bytes.data(), static_cast<int>(bytes.size()))
                          << QString(needle);
    };
    const std::string u8a = R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]})";
    add("empty file", "", "shorter than the 8-byte");
    add("7 bytes", std::string(7, '\0'), "shorter than the 8-byte");
    add("header past end", lengthPrefix(1000) + "{}", "runs past the end");
    add("header over 100 MB", lengthPrefix(200'000'000) + "{}", "100 MB");
    add("header length max", lengthPrefix(~uint64_t{0}) + "{}", "100 MB");
    add("invalid json", rawFile(R"({"a":)", ""), "not valid JSON");
    add("invalid utf-8", rawFile("{\"\xff\xfe\":{}}", ""), "not valid JSON");
    add("not an object", rawFile("[1,2]   ", ""), "not a JSON object");
    add("entry not object", rawFile(R"({"a":5})", ""), "not an object");
    add("no dtype", rawFile(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", "x"), "no dtype");
    add("no shape", rawFile(R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", "x"), "no shape");
    add("bad offsets", rawFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", "x"),
        "data_offsets");
    add("unknown dtype", rawFile(R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", "x"),
        "unsupported dtype 'F8'");
    add("negative dim", rawFile(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "x"),
        "non-negative integer");
    add("float offset", rawFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0.0,1]}})", "x"),
        "non-negative integer");
    add("size mismatch",
        rawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"),
        "needs 8 bytes");
    add("shape overflow",
        rawFile(
            R"({"a":{"dtype":"U8","shape":[1099511627776,1099511627776],"data_offsets":[0,0]}})",
            ""),
        "more than 2^64");
    add("beyond buffer",
        rawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"), "beyond");
    add("end before begin",
        rawFile(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}})", "ab"),
        "end before they begin");
    add("overlap",
        rawFile("{" + u8a + R"(,"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", "abc"),
        "overlaps");
    add("gap",
        rawFile("{" + u8a + R"(,"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})", "abcde"),
        "gap");
    add("gap at start", rawFile(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", "abc"),
        "gap");
    add("trailing bytes", rawFile("{" + u8a + "}", "abcd"), "2 trailing bytes");
    add("data but no tensors", rawFile("{}", "abcd"), "trailing");
    add("metadata not object", rawFile(R"({"__metadata__":[1]})", ""), "__metadata__");
    add("metadata not string", rawFile(R"({"__metadata__":{"k":1}})", ""), "not a string");
    add("bool byte 2",
        rawFile(R"({"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})",
                std::string("\x01\x02", 2)),
        "BOOL");
  }

  void rejectsMalformedFiles() {
    QFETCH(QByteArray, bytes);
    QFETCH(QString, needle);
    const std::string file = path("malformed.safetensors");
    writeBytes(file, bytes.toStdString());
    expectError(file, needle.toStdString());
  }

  void rejectsMissingFileAndFolder() {
    expectError(path("does-not-exist.safetensors"), "cannot");
    expectError(dir_.path().toStdString(), "");
  }

  void acceptsEmptyFileAndWhitespace() {
    const std::string file = path("minimal.safetensors");
    writeBytes(file, rawFile("{}", ""));
    QVERIFY(Safetensors::read(file).empty());
    writeBytes(file,
               rawFile("  {\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}} \n", ""));
    QCOMPARE(Safetensors::read(file).at(0).second.numel(), int64_t{0});
  }

  // Every proper prefix of a valid file is an error naming the file, never a crash.
  void truncatedCopiesFail() {
    const std::string good = readBytes(kFixtures + "all_dtypes.safetensors");
    QVERIFY(good.size() > 100);
    const std::string file = path("truncated.safetensors");
    for (size_t n = 0; n < good.size(); ++n) {
      writeBytes(file, good.substr(0, n));
      const std::string message = errorOf([&] { Safetensors::read(file); });
      QVERIFY2(message.find(file) != std::string::npos,
               ("prefix " + std::to_string(n) + ": " + message).c_str());
    }
    writeBytes(file, good + "x");
    expectError(file, "1 trailing bytes");
  }

  // Each single-bit flip anywhere in a valid file either still parses or gives an error naming
  // the file; bit flips in the data region parse (and BOOL bytes are checked), never a crash.
  void bitFlippedCopiesNeverCrash() {
    for (const char* name : {"unpadded.safetensors", "all_dtypes.safetensors"}) {
      const std::string good = readBytes(kFixtures + name);
      const std::string file = path(std::string("flipped-") + name);
      int errors = 0, parsed = 0;
      for (size_t i = 0; i < good.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
          std::string bad = good;
          bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
          writeBytes(file, bad);
          std::string message;
          try {
            for (const auto& [key, tensor] : Safetensors::read(file))
              (void)tensor.sum();
            ++parsed;
          } catch (const std::runtime_error& e) {
            message = e.what();
            ++errors;
            QVERIFY2(message.find(file) != std::string::npos, message.c_str());
          }
        }
      }
      QVERIFY(errors > 0 && parsed > 0);
      qInfo("%s: %d flips rejected, %d still parse", name, errors, parsed);
    }
  }
};

QTEST_APPLESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
