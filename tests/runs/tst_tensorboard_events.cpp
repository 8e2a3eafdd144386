// TensorBoard event files: CRC-32C and its masked form against published vectors, protobuf
// encoding against known bytes, the sink's file against the independent Python writer
// (tests/reference/tensorboard_reference.py) byte for byte, a parse-back with a reader written
// here, flushing, and a truncated (killed) file that stays readable up to its last whole record.
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runs/Crc32c.h"
#include "runs/ProtobufWriter.h"
#include "runs/TensorBoardEventSink.h"
#include "runs/TfRecordWriter.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"

using sae::Crc32c;
using sae::ProtobufWriter;
using sae::TensorBoardEventSink;
using sae::TfRecordWriter;
using saetest::readText;
namespace fs = std::filesystem;

namespace {

std::string bytesOf(std::initializer_list<int> values) {
  std::string out;
  for (int v : values)
    out.push_back(static_cast<char>(v));
  return out;
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// --- an independent minimal reader (bitwise CRC, its own varint and field decoding) ----------

uint32_t slowCrc32c(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc & 1u) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return crc ^ 0xFFFFFFFFu;
}

uint32_t slowMasked(const std::string& data) {
  const uint32_t crc = slowCrc32c(data);
  return static_cast<uint32_t>(((crc >> 15) | (crc << 17)) + 0xA282EAD8u);
}

uint64_t littleEndian(const std::string& bytes, size_t at, int n) {
  uint64_t value = 0;
  for (int i = 0; i < n; ++i)
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  return value;
}

struct Records {
  std::vector<std::string> payloads;
  bool truncated = false;  // the file ends inside a record
  std::string crcError;    // a CRC mismatch (a corrupt, not merely short, file)
};

Records readRecords(const std::string& file) {
  Records out;
  size_t at = 0;
  while (at < file.size()) {
    if (file.size() - at < 12) {
      out.truncated = true;
      break;
    }
    const std::string header = file.substr(at, 8);
    if (littleEndian(file, at + 8, 4) != slowMasked(header)) {
      out.crcError = "length CRC at " + std::to_string(at);
      break;
    }
    const uint64_t length = littleEndian(file, at, 8);
    if (file.size() - at - 12 < length + 4) {
      out.truncated = true;
      break;
    }
    const std::string payload = file.substr(at + 12, length);
    if (littleEndian(file, at + 12 + length, 4) != slowMasked(payload)) {
      out.crcError = "data CRC at " + std::to_string(at);
      break;
    }
    out.payloads.push_back(payload);
    at += 16 + length;
  }
  return out;
}

struct Field {
  int number = 0;
  int wire = 0;
  uint64_t integer = 0;  // varint, fixed32 or fixed64 bits
  std::string bytes;     // length-delimited
};

uint64_t readVarint(const std::string& data, size_t& at) {
  uint64_t value = 0;
  for (int shift = 0; at < data.size(); shift += 7) {
    const auto byte = static_cast<unsigned char>(data[at++]);
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (byte < 0x80) return value;
  }
  throw std::runtime_error("varint runs past the end");
}

std::vector<Field> readFields(const std::string& data) {
  std::vector<Field> fields;
  size_t at = 0;
  while (at < data.size()) {
    Field f;
    const uint64_t key = readVarint(data, at);
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    if (f.wire == 0) {
      f.integer = readVarint(data, at);
    } else if (f.wire == 1 || f.wire == 5) {
      const int n = f.wire == 1 ? 8 : 4;
      if (data.size() - at < static_cast<size_t>(n)) throw std::runtime_error("short fixed");
      f.integer = littleEndian(data, at, n);
      at += static_cast<size_t>(n);
    } else if (f.wire == 2) {
      const uint64_t n = readVarint(data, at);
      if (data.size() - at < n) throw std::runtime_error("short bytes");
      f.bytes = data.substr(at, n);
      at += n;
    } else {
      throw std::runtime_error("unexpected wire type " + std::to_string(f.wire));
    }
    fields.push_back(f);
  }
  return fields;
}

double asDouble(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

float asFloat(uint64_t bits) {
  const auto b32 = static_cast<uint32_t>(bits);
  float f;
  std::memcpy(&f, &b32, sizeof f);
  return f;
}

std::vector<double> packedDoubles(const std::string& bytes) {
  std::vector<double> out;
  for (size_t at = 0; at + 8 <= bytes.size(); at += 8)
    out.push_back(asDouble(littleEndian(bytes, at, 8)));
  return out;
}

struct DecodedHistogram {
  double min = 0, max = 0, num = 0, sum = 0, sumSquares = 0;
  std::vector<double> limits, buckets;
};

struct DecodedEvent {
  double wallTime = 0;
  int64_t step = 0;
  std::string fileVersion;
  std::map<std::string, float> scalars;
  std::map<std::string, DecodedHistogram> histograms;
};

DecodedEvent decodeEvent(const std::string& payload) {
  DecodedEvent event;
  for (const Field& f : readFields(payload)) {
    if (f.number == 1 && f.wire == 1) event.wallTime = asDouble(f.integer);
    if (f.number == 2 && f.wire == 0) event.step = static_cast<int64_t>(f.integer);
    if (f.number == 3 && f.wire == 2) event.fileVersion = f.bytes;
    if (f.number != 5 || f.wire != 2) continue;
    for (const Field& value : readFields(f.bytes)) {
      std::string tag;
      bool isScalar = false;
      float scalar = 0;
      bool isHisto = false;
      DecodedHistogram histo;
      for (const Field& vf : readFields(value.bytes)) {
        if (vf.number == 1) tag = vf.bytes;
        if (vf.number == 2 && vf.wire == 5) {
          isScalar = true;
          scalar = asFloat(vf.integer);
        }
        if (vf.number == 5 && vf.wire == 2) {
          isHisto = true;
          for (const Field& hf : readFields(vf.bytes)) {
            const double d = asDouble(hf.integer);
            if (hf.number == 1) histo.min = d;
            if (hf.number == 2) histo.max = d;
            if (hf.number == 3) histo.num = d;
            if (hf.number == 4) histo.sum = d;
            if (hf.number == 5) histo.sumSquares = d;
            if (hf.number == 6) histo.limits = packedDoubles(hf.bytes);
            if (hf.number == 7) histo.buckets = packedDoubles(hf.bytes);
          }
        }
      }
      if (isScalar) event.scalars[tag] = scalar;
      if (isHisto) event.histograms[tag] = histo;
    }
  }
  return event;
}

double fromJson(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  const std::string s = v.get<std::string>();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "-inf") return -std::numeric_limits<double>::infinity();
  throw std::runtime_error("unexpected value " + s);
}

TensorBoardEventSink::Options fixedClock(double start, double* next, double flushSeconds) {
  TensorBoardEventSink::Options options;
  *next = start;
  options.clock = [next] {
    const double t = *next;
    *next += 1;
    return t;
  };
  options.hostname = "testhost";
  options.flushSeconds = flushSeconds;
  return options;
}

}  // namespace

class TestTensorBoardEvents : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  // RFC 3720 (iSCSI) appendix B.4 and the usual check value.
  void crc32cKnownVectors() {
    QCOMPARE(Crc32c::value(std::string("123456789")), 0xE3069283u);
    QCOMPARE(Crc32c::value(std::string()), 0u);
    QCOMPARE(Crc32c::value(std::string(32, '\0')), 0x8A9136AAu);
    QCOMPARE(Crc32c::value(std::string(32, '\xff')), 0x62A8AB43u);
    std::string ascending, descending;
    for (int i = 0; i < 32; ++i) {
      ascending.push_back(static_cast<char>(i));
      descending.push_back(static_cast<char>(31 - i));
    }
    QCOMPARE(Crc32c::value(ascending), 0x46DD794Eu);
    QCOMPARE(Crc32c::value(descending), 0x113FDB5Cu);
    const std::string iscsiRead =
        bytesOf({0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
    QCOMPARE(Crc32c::value(iscsiRead), 0xD9963A56u);
    // Continuing over a second part equals one pass over both.
    const std::string text = "The quick brown fox jumps over the lazy dog";
    QCOMPARE(Crc32c::value(text.data() + 10, text.size() - 10, Crc32c::value(text.data(), 10)),
             Crc32c::value(text));
    QCOMPARE(Crc32c::value(text), slowCrc32c(text));
  }

  void maskedCrc() {
    QCOMPARE(Crc32c::mask(0u), 0xA282EAD8u);
    // (0xE3069283 >> 15 | 0xE3069283 << 17) + 0xA282EAD8 mod 2^32, worked by hand.
    QCOMPARE(Crc32c::mask(0xE3069283u), 0xC78AB0E5u);
    for (uint32_t crc : {0u, 1u, 0x80000000u, 0xFFFFFFFFu, 0x12345678u})
      QCOMPARE(Crc32c::unmask(Crc32c::mask(crc)), crc);
  }

  void varints() {
    QCOMPARE(hex(ProtobufWriter::varint(0)), std::string("00"));
    QCOMPARE(hex(ProtobufWriter::varint(1)), std::string("01"));
    QCOMPARE(hex(ProtobufWriter::varint(127)), std::string("7f"));
    QCOMPARE(hex(ProtobufWriter::varint(128)), std::string("8001"));
    QCOMPARE(hex(ProtobufWriter::varint(300)), std::string("ac02"));
    QCOMPARE(hex(ProtobufWriter::varint(uint64_t(1) << 32)), std::string("8080808010"));
    QCOMPARE(hex(ProtobufWriter::varint(~uint64_t(0))), std::string("ffffffffffffffffff01"));
  }

  void protobufFields() {
    ProtobufWriter w;
    w.addDouble(1, 1.0);
    QCOMPARE(hex(w.bytes()), std::string("09000000000000f03f"));
    ProtobufWriter f;
    f.addFloat(2, 1.0f);
    QCOMPARE(hex(f.bytes()), std::string("150000803f"));
    ProtobufWriter s;
    s.addBytes(3, "brain.Event:2");
    QCOMPARE(hex(s.bytes()), "1a0d" + hex("brain.Event:2"));
    ProtobufWriter i;
    i.addInt64(2, 150);
    i.addInt64(2, -1);  // int64: ten bytes, two's complement
    QCOMPARE(hex(i.bytes()), std::string("109601") + "10ffffffffffffffffff01");
    ProtobufWriter p;
    p.addPackedDoubles(6, {1.0, -2.0});
    QCOMPARE(hex(p.bytes()), std::string("3210000000000000f03f00000000000000c0"));
    ProtobufWriter big;
    big.addVarint(16, 1);  // field numbers >= 16 need a two-byte key
    QCOMPARE(hex(big.bytes()), std::string("800101"));
    ProtobufWriter outer;
    outer.addMessage(5, s);
    QCOMPARE(hex(outer.bytes()), "2a0f" + hex(s.bytes()));
  }

  void recordFraming() {
    const std::string data = "abc";
    const std::string record = TfRecordWriter::frame(data);
    QCOMPARE(record.size(), size_t(3 + 16));
    QCOMPARE(hex(record.substr(0, 8)), std::string("0300000000000000"));
    QCOMPARE(littleEndian(record, 8, 4), uint64_t(slowMasked(record.substr(0, 8))));
    QCOMPARE(record.substr(12, 3), data);
    QCOMPARE(littleEndian(record, 15, 4), uint64_t(slowMasked(data)));
    const Records parsed = readRecords(record + TfRecordWriter::frame(""));
    QCOMPARE(parsed.payloads.size(), size_t(2));
    QCOMPARE(parsed.payloads[1], std::string());
    QVERIFY(!parsed.truncated);
  }

  // The sink's file equals the one tests/reference/tensorboard_reference.py encoded on its own.
  void matchesPythonReferenceByteForByte() {
    const nlohmann::json inputs = [] {
      std::ifstream in(std::string(SAEWB_FIXTURES_DIR) + "/runs/tensorboard_inputs.json");
      return nlohmann::json::parse(in);
    }();
    const std::string expected =
        readText(std::string(SAEWB_FIXTURES_DIR) + "/runs/expected.tfevents");
    QVERIFY(expected.size() > 1000);
    const auto clock = inputs["clock"].get<std::vector<double>>();

    QTemporaryDir dir;
    size_t reads = 0;
    std::string path;
    {
      TensorBoardEventSink::Options options;
      options.clock = [&] {
        if (reads >= clock.size()) throw std::runtime_error("clock read too often");
        return clock[reads++];
      };
      options.hostname = "reference";
      options.flushSeconds = 3600;
      options.histogramBins = inputs["bins"].get<int>();
      TensorBoardEventSink sink(dir.path().toStdString(), options);
      path = sink.path();
      for (const auto& item : inputs["events"]) {
        if (item["kind"] == "metrics") {
          sae::MetricsEvent event;
          event.step = item["step"].get<int64_t>();
          for (const auto& [name, value] : item["values"].items())
            event.values[name] = fromJson(value);
          sink.onMetrics(event);
        } else {
          sae::HistogramEvent event;
          event.step = item["step"].get<int64_t>();
          event.name = item["name"].get<std::string>();
          for (const auto& value : item["values"])
            event.values.push_back(fromJson(value));
          sink.onHistogram(event);
        }
      }
    }  // the destructor flushes
    QCOMPARE(reads, clock.size());
    QCOMPARE(fs::path(path).filename().string(),
             std::string("events.out.tfevents.1714563000.reference"));
    const std::string actual = readText(path);
    size_t firstDiff = 0;
    while (firstDiff < std::min(actual.size(), expected.size()) &&
           actual[firstDiff] == expected[firstDiff])
      ++firstDiff;
    if (actual != expected) {
      QFAIL(qPrintable(QString("files differ at byte %1 (sizes %2 / %3)")
                           .arg(firstDiff)
                           .arg(actual.size())
                           .arg(expected.size())));
    }
  }

  // Events written by the sink decode, with the reader above, to what went in.
  void parseBack() {
    QTemporaryDir dir;
    double next = 0;
    std::string path;
    std::vector<double> norms;
    for (int i = 0; i < 50; ++i)
      norms.push_back(0.5 + 0.01 * i);
    {
      TensorBoardEventSink sink(dir.path().toStdString(), fixedClock(1700000000.5, &next, 3600));
      path = sink.path();
      for (int64_t step = 0; step < 3; ++step) {
        sae::MetricsEvent event;
        event.step = step * 1000;
        event.values["losses/mse_loss"] = 1.0 / (step + 1);
        event.values["sparsity/dead_features"] = static_cast<double>(step);
        sink.onMetrics(event);
      }
      sae::HistogramEvent histogram;
      histogram.step = 2000;
      histogram.name = "weights/W_dec_norms";
      histogram.values = norms;
      sink.onHistogram(histogram);
      sink.onFinished("final");
    }
    QVERIFY(std::regex_match(fs::path(path).filename().string(),
                             std::regex(R"(events\.out\.tfevents\.1700000000\.testhost)")));
    const Records records = readRecords(readText(path));
    QVERIFY2(records.crcError.empty(), records.crcError.c_str());
    QVERIFY(!records.truncated);
    QCOMPARE(records.payloads.size(), size_t(5));

    const DecodedEvent first = decodeEvent(records.payloads[0]);
    QCOMPARE(first.fileVersion, std::string("brain.Event:2"));
    QCOMPARE(first.wallTime, 1700000000.5);
    for (int64_t step = 0; step < 3; ++step) {
      const DecodedEvent e = decodeEvent(records.payloads[static_cast<size_t>(step) + 1]);
      QCOMPARE(e.step, step * 1000);
      QCOMPARE(e.wallTime, 1700000001.5 + static_cast<double>(step));
      QCOMPARE(e.scalars.size(), size_t(2));
      QCOMPARE(e.scalars.at("losses/mse_loss"), static_cast<float>(1.0 / (step + 1)));
      QCOMPARE(e.scalars.at("sparsity/dead_features"), static_cast<float>(step));
    }
    const DecodedEvent h = decodeEvent(records.payloads[4]);
    QCOMPARE(h.step, int64_t(2000));
    QVERIFY(h.histograms.count("weights/W_dec_norms"));
    const DecodedHistogram& histo = h.histograms.at("weights/W_dec_norms");
    QCOMPARE(histo.min, 0.5);
    QCOMPARE(histo.max, 0.5 + 0.01 * 49);
    QCOMPARE(histo.num, 50.0);
    double sum = 0, squares = 0;
    for (double v : norms) {
      sum += v;
      squares += v * v;
    }
    QCOMPARE(histo.sum, sum);
    QCOMPARE(histo.sumSquares, squares);
    QCOMPARE(histo.limits.size(), size_t(31));
    QCOMPARE(histo.buckets.size(), size_t(31));
    QCOMPARE(histo.limits.front(), 0.5);
    QCOMPARE(histo.limits.back(), 0.99);
    QCOMPARE(histo.buckets.front(), 0.0);
    double counted = 0;
    for (size_t i = 1; i < histo.buckets.size(); ++i) {
      QVERIFY(histo.limits[i] > histo.limits[i - 1]);
      counted += histo.buckets[i];
    }
    QCOMPARE(counted, 50.0);
    // 50 evenly spaced values in 30 equal bins: every bin holds one or two.
    for (size_t i = 1; i < histo.buckets.size(); ++i)
      QVERIFY(histo.buckets[i] == 1.0 || histo.buckets[i] == 2.0);
  }

  // A killed writer leaves a partial record at the end: everything before it still reads, and
  // the reader tells a short file from a corrupt one.
  void truncatedFileReadsUpToLastWholeRecord() {
    QTemporaryDir dir;
    double next = 0;
    std::string path;
    {
      TensorBoardEventSink sink(dir.path().toStdString(), fixedClock(1700000000, &next, 0));
      path = sink.path();
      for (int64_t step = 1; step <= 4; ++step) {
        sae::MetricsEvent event;
        event.step = step;
        event.values["losses/mse_loss"] = 0.1 * step;
        sink.onMetrics(event);
      }
    }
    const std::string full = readText(path);
    const Records all = readRecords(full);
    QCOMPARE(all.payloads.size(), size_t(5));
    std::vector<size_t> ends;
    size_t at = 0;
    for (const auto& payload : all.payloads) {
      at += payload.size() + 16;
      ends.push_back(at);
    }
    QCOMPARE(ends.back(), full.size());
    for (size_t cut = 0; cut <= full.size(); ++cut) {
      const std::string truncatedPath = dir.filePath("cut").toStdString();
      saetest::writeText(truncatedPath, full.substr(0, cut));
      const Records partial = readRecords(readText(truncatedPath));
      size_t whole = 0;
      while (whole < ends.size() && ends[whole] <= cut)
        ++whole;
      QVERIFY(partial.crcError.empty());
      QCOMPARE(partial.payloads.size(), whole);
      QCOMPARE(partial.truncated, whole == 0 ? cut > 0 : cut != ends[whole - 1]);
      for (size_t i = 0; i < whole; ++i)
        QCOMPARE(partial.payloads[i], all.payloads[i]);
    }
    // A flipped bit is a CRC error, not a short file.
    std::string corrupt = full;
    corrupt[ends[1] + 14] ^= 0x01;
    QVERIFY(!readRecords(corrupt).crcError.empty());
  }

  // Events reach the file every flushSeconds, and at checkpoints and the end at the latest.
  void flushes() {
    QTemporaryDir dir;
    double next = 0;
    sae::MetricsEvent event;
    event.step = 7;
    event.values["losses/mse_loss"] = 0.5;
    {
      QTemporaryDir lazyDir;
      TensorBoardEventSink lazy(lazyDir.path().toStdString(), fixedClock(1, &next, 3600));
      QCOMPARE(readRecords(readText(lazy.path())).payloads.size(), size_t(1));  // file_version
      lazy.onMetrics(event);
      QCOMPARE(readRecords(readText(lazy.path())).payloads.size(), size_t(1));
      lazy.onCheckpoint("checkpoints/4096");
      QCOMPARE(readRecords(readText(lazy.path())).payloads.size(), size_t(2));
    }
    TensorBoardEventSink eager(dir.path().toStdString(), fixedClock(1, &next, 0));
    eager.onMetrics(event);
    QCOMPARE(readRecords(readText(eager.path())).payloads.size(), size_t(2));
    // An empty metrics event and an all-NaN histogram write nothing.
    eager.onMetrics(sae::MetricsEvent{});
    sae::HistogramEvent nan;
    nan.name = "weights/W_dec_norms";
    nan.values = {std::nan("")};
    eager.onHistogram(nan);
    QCOMPARE(readRecords(readText(eager.path())).payloads.size(), size_t(2));
  }

  void histogramBinning() {
    sae::TensorBoardHistogram h;
    QVERIFY(!TensorBoardEventSink::makeHistogram({}, 30, h));
    QVERIFY(!TensorBoardEventSink::makeHistogram({std::nan(""), HUGE_VAL}, 30, h));
    // Values on bin edges: numpy puts them in the bin to the right, the maximum in the last.
    QVERIFY(TensorBoardEventSink::makeHistogram({0, 1, 2, 3, 4}, 4, h));
    QCOMPARE(h.bucket_limit, (std::vector<double>{0, 1, 2, 3, 4}));
    QCOMPARE(h.bucket, (std::vector<double>{0, 1, 1, 1, 2}));
    // A gap inside stays; a single repeated value gets (v - 0.5, v + 0.5] trimmed to its bin.
    QVERIFY(TensorBoardEventSink::makeHistogram({0, 0, 4}, 4, h));
    QCOMPARE(h.bucket, (std::vector<double>{0, 2, 0, 0, 1}));
    QVERIFY(TensorBoardEventSink::makeHistogram({3, 3, 3}, 2, h));
    QCOMPARE(h.bucket_limit, (std::vector<double>{3, 3.5}));
    QCOMPARE(h.bucket, (std::vector<double>{0, 3}));  // the bucket in front, (2.5, 3], is empty
    QCOMPARE(h.num, 3.0);
    QCOMPARE(h.sum_squares, 27.0);
    // Values exactly on the edges of numpy.linspace(0.1, 0.9, 31), where the index estimate
    // (v - lo) / (hi - lo) * 30 falls one short (e.g. 0.18 -> 2.9999...): numpy's edge check
    // moves them up, giving np.histogram's counts [1] * 29 + [2].
    std::vector<double> edges;
    const double step = (0.9 - 0.1) / 30;
    for (int i = 0; i < 30; ++i)
      edges.push_back(i * step + 0.1);
    edges.push_back(0.9);
    QVERIFY(TensorBoardEventSink::makeHistogram(edges, 30, h));
    QCOMPARE(h.bucket_limit, edges);
    std::vector<double> expected(31, 1.0);
    expected.front() = 0;
    expected.back() = 2;
    QCOMPARE(h.bucket, expected);
  }

  void nameCollisionAndErrors() {
    QTemporaryDir dir;
    double a = 0, b = 0;
    TensorBoardEventSink first(dir.path().toStdString(), fixedClock(1700000000, &a, 0));
    TensorBoardEventSink second(dir.path().toStdString(), fixedClock(1700000000, &b, 0));
    QCOMPARE(fs::path(second.path()).filename().string(),
             fs::path(first.path()).filename().string() + ".1");

    const std::string missing = dir.filePath("no/such/folder").toStdString();
    const std::string error =
        saetest::errorOf([&] { TensorBoardEventSink sink(missing, fixedClock(1, &a, 0)); });
    QVERIFY2(saetest::contains(error, missing), error.c_str());
  }
};

QTEST_GUILESS_MAIN(TestTensorBoardEvents)
#include "tst_tensorboard_events.moc"
