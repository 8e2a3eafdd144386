// Bf16Gemm (the encoder product under `autocast`) against torch 1.13's
// mm(A.bfloat16().float(), B.bfloat16().float()): the fixture of
// tests/reference/bf16_gemm_reference.py for small and odd shapes, and the training chunk shape
// 256x512x32768 generated here with a reference computed by LibTorch in float64.
//
// Tolerance ("1e-5 of sum |a||b|"): |C - C_ref| <= 1e-5 * (|bf16(A)| @ |bf16(B)|) element-wise,
// with C_ref the float64 product of the rounded inputs. Products of two bf16 values are exact in
// fp32, so the only differences left are the order of the fp32 additions, whose error is bounded
// by a small multiple of k * 2^-24 * sum |a||b| and in practice near sqrt(k) * 2^-24 of it. The
// same check fails for an fp32 product of the unrounded inputs (bf16 keeps 8 bits: each input
// moves by up to 2^-9 of itself), which proves the rounding happens.
//
// The conversion alone is compared bit for bit with torch's float -> bfloat16 (round to nearest,
// ties to even, subnormals kept, overflow to inf); NaN only has to stay NaN (torch writes 0xffff
// or 0x7fc0 depending on the path, Bf16Gemm keeps the sign and payload and sets the quiet bit).
#include <QtTest>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "formats/Safetensors.h"
#include "train/Bf16Gemm.h"
#include "train/GemmKernel.h"

using sae::Bf16Gemm;

namespace {

constexpr double kRelative = 1e-5;

const std::string kFixture = std::string(SAEWB_FIXTURES_DIR) + "/bf16/gemm.safetensors";

std::map<std::string, torch::Tensor> loadFixture(std::string* cases = nullptr) {
  std::map<std::string, std::string> metadata;
  std::map<std::string, torch::Tensor> tensors;
  for (auto& [name, tensor] : sae::Safetensors::read(kFixture, &metadata))
    tensors[name] = tensor;
  if (cases) *cases = metadata["cases"];
  return tensors;
}

torch::Tensor roundedToBf16(const torch::Tensor& t) {
  return t.to(torch::kBFloat16).to(torch::kFloat64);
}

// Worst |actual - reference| / (|bf16(a)| @ |bf16(b)|) over all elements.
double worstScaledError(const torch::Tensor& actual, const torch::Tensor& reference,
                        const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor scale = torch::mm(roundedToBf16(a).abs(), roundedToBf16(b).abs());
  const torch::Tensor error = (actual.to(torch::kFloat64) - reference.to(torch::kFloat64)).abs();
  return (error / (scale + 1e-30)).max().item<double>();
}

torch::Tensor bf16Product(Bf16Gemm& gemm, const torch::Tensor& a, const torch::Tensor& b) {
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  torch::Tensor c = torch::full({m, n}, std::nan(""));
  gemm.multiply(a.contiguous().data_ptr<float>(), b.contiguous().data_ptr<float>(),
                c.data_ptr<float>(), m, k, n);
  return c;
}

torch::Tensor fp32Product(sae::GemmKernel::Kind kind, const torch::Tensor& a,
                          const torch::Tensor& b) {
  torch::Tensor c = torch::empty({a.size(0), b.size(1)});
  sae::GemmKernel::multiply(kind, a.data_ptr<float>(), b.data_ptr<float>(), c.data_ptr<float>(),
                            a.size(0), a.size(1), b.size(1));
  return c;
}

uint32_t bitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float floatOf(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// Empty when every converted value equals torch's (NaN: both NaN).
std::string compareWithTorch(const torch::Tensor& input) {
  const int64_t count = input.numel();
  std::vector<uint16_t> ours(size_t(count), 0xdead);
  Bf16Gemm::toBf16(input.data_ptr<float>(), ours.data(), count);
  const torch::Tensor theirs = input.to(torch::kBFloat16).view(torch::kInt16);
  const int16_t* expected = theirs.data_ptr<int16_t>();
  for (int64_t i = 0; i < count; ++i) {
    const float value = input.data_ptr<float>()[i];
    const uint16_t want = uint16_t(expected[i]);
    if (std::isnan(value)) {
      if (!std::isnan(Bf16Gemm::bf16ToFloat(ours[size_t(i)])))
        return "NaN input " + std::to_string(bitsOf(value)) + " at " + std::to_string(i) +
               " did not stay NaN";
    } else if (ours[size_t(i)] != want) {
      return "element " + std::to_string(i) + " of " + std::to_string(count) + " (bits 0x" +
             QString::number(bitsOf(value), 16).toStdString() + "): 0x" +
             QString::number(ours[size_t(i)], 16).toStdString() + ", torch 0x" +
             QString::number(want, 16).toStdString();
    }
  }
  return {};
}

}  // namespace

class TestBf16Gemm : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(std::max(1u, std::thread::hardware_concurrency()));
    qInfo("Bf16Gemm::available() = %d %s", int(Bf16Gemm::available()),
          Bf16Gemm::unavailableReason().c_str());
  }

  // Literal cases: ties in both directions, overflow, NaN, subnormals.
  void convertsSpecialValues() {
    const std::pair<uint32_t, uint16_t> cases[] = {
        {0x3F800000, 0x3F80},  // 1
        {0x3F808000, 0x3F80},  // tie, even kept half: down
        {0x3F818000, 0x3F82},  // tie, odd kept half: up
        {0x3F808001, 0x3F81},  // above the tie
        {0x3F807FFF, 0x3F80},  // below the tie
        {0xBF818000, 0xBF82},  // negative tie, odd: away from zero
        {0x80000000, 0x8000},  // -0
        {0x7F800000, 0x7F80},  // inf
        {0xFF800000, 0xFF80},  // -inf
        {0x7F7FFFFF, 0x7F80},  // FLT_MAX rounds to inf
        {0x7F7F7FFF, 0x7F7F},  // largest float that stays finite
        {0x00000001, 0x0000},  // smallest subnormal: down to 0
        {0x00018000, 0x0002},  // subnormal tie, odd: up (subnormals are not flushed)
        {0x00008000, 0x0000},  // subnormal tie, even: down
        {0x0080FFFF, 0x0081},  // smallest normal + almost one bf16 ulp
    };
    std::vector<float> in;
    for (const auto& [bits, expected] : cases)
      in.push_back(floatOf(bits));
    std::vector<uint16_t> out(in.size());
    Bf16Gemm::toBf16(in.data(), out.data(), int64_t(in.size()));
    for (size_t i = 0; i < in.size(); ++i)
      QVERIFY2(out[i] == cases[i].second, qPrintable(QString("0x%1 -> 0x%2, expected 0x%3")
                                                         .arg(cases[i].first, 8, 16, QChar('0'))
                                                         .arg(out[i], 4, 16, QChar('0'))
                                                         .arg(cases[i].second, 4, 16, QChar('0'))));
    // NaNs stay NaN, including signalling ones whose rounding carry would reach inf.
    for (const uint32_t nan :
         {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu, 0x7F80FFFFu}) {
      const float value = floatOf(nan);
      uint16_t converted = 0;
      Bf16Gemm::toBf16(&value, &converted, 1);
      QVERIFY2(std::isnan(Bf16Gemm::bf16ToFloat(converted)),
               qPrintable(QString("NaN 0x%1 -> 0x%2").arg(nan, 8, 16).arg(converted, 4, 16)));
    }
    QCOMPARE(Bf16Gemm::bf16ToFloat(0x3F82), 1.015625f);
  }

  // torch's conversion as recorded by the reference script (specials and 4096 random bit
  // patterns, a length that is not a multiple of the vector width).
  void convertsLikeTorchFixture() {
    auto tensors = loadFixture();
    const torch::Tensor in = tensors.at("convert.in");
    const torch::Tensor expected = tensors.at("convert.out").view(torch::kInt16);
    QCOMPARE(in.numel(), expected.numel());
    std::vector<uint16_t> out(size_t(in.numel()));
    Bf16Gemm::toBf16(in.data_ptr<float>(), out.data(), in.numel());
    int nans = 0;
    for (int64_t i = 0; i < in.numel(); ++i) {
      const float value = in.data_ptr<float>()[i];
      if (std::isnan(value)) {
        ++nans;
        QVERIFY2(std::isnan(Bf16Gemm::bf16ToFloat(out[size_t(i)])), qPrintable(QString::number(i)));
      } else {
        QVERIFY2(out[size_t(i)] == uint16_t(expected.data_ptr<int16_t>()[i]),
                 qPrintable(QString("element %1: 0x%2 vs torch 0x%3")
                                .arg(i)
                                .arg(out[size_t(i)], 4, 16)
                                .arg(uint16_t(expected.data_ptr<int16_t>()[i]), 4, 16)));
      }
    }
    QVERIFY(nans > 5);  // the specials plus the random patterns that happen to be NaN
  }

  // Every length around the vector width (the scalar tail and the 16-wide body), and a length
  // that at::parallel_for splits between threads; against torch in this process.
  void convertsAnyLengthLikeTorch() {
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(31);
    for (int64_t count = 1; count <= 40; ++count) {
      const torch::Tensor in = at::randn({count}, generator, torch::kFloat32) * 100;
      const std::string problem = compareWithTorch(in);
      QVERIFY2(problem.empty(), problem.c_str());
    }
    const torch::Tensor large =
        at::randint(0, int64_t(1) << 32, {(int64_t(1) << 20) + 7}, generator, torch::kInt64)
            .to(torch::kInt32)
            .view(torch::kFloat32);
    const std::string problem = compareWithTorch(large);
    QVERIFY2(problem.empty(), problem.c_str());
  }

  void matchesReferenceFixture_data() {
    QTest::addColumn<QString>("name");
    std::string cases;
    loadFixture(&cases);
    for (const QString& name : QString::fromStdString(cases).split(','))
      QTest::newRow(qPrintable(name)) << name;
  }

  void matchesReferenceFixture() {
    if (!Bf16Gemm::available()) QSKIP(Bf16Gemm::unavailableReason().c_str());
    QFETCH(QString, name);
    auto tensors = loadFixture();
    const std::string key = name.toStdString();
    const torch::Tensor a = tensors.at(key + ".a"), b = tensors.at(key + ".b");
    const torch::Tensor c64 = tensors.at(key + ".c64"), c32 = tensors.at(key + ".c32");
    Bf16Gemm gemm;
    const torch::Tensor c = bf16Product(gemm, a, b);
    const double error = worstScaledError(c, c64, a, b);
    qInfo("%s %lldx%lldx%lld (%s): worst error %.3g of sum|a||b|", key.c_str(),
          (long long)a.size(0), (long long)a.size(1), (long long)b.size(1),
          gemm.implementation().c_str(), error);
    QVERIFY2(error <= kRelative, qPrintable(QString::number(error)));
    // torch's own fp32 product of the rounded inputs meets the same tolerance (the tolerance
    // is about accumulation order only).
    QVERIFY(worstScaledError(c32, c64, a, b) <= kRelative);
    // The fp32 kernels on the unrounded inputs do not: the rounding to bf16 happens.
    for (const auto kind : {sae::GemmKernel::Kind::Torch, sae::GemmKernel::Kind::OneDnn}) {
      const double fp32Error = worstScaledError(fp32Product(kind, a, b), c64, a, b);
      qInfo("  fp32 %s on unrounded inputs: %.3g", sae::GemmKernel::name(kind).c_str(), fp32Error);
      QVERIFY2(
          fp32Error > 10 * kRelative,
          qPrintable(QString("%1: %2").arg(sae::GemmKernel::name(kind).c_str()).arg(fp32Error)));
    }
  }

  // The shape of a training chunk (256 rows, d_in 512, d_sae 32768), B prepared once and used
  // for the whole chunk, then for two row chunks of different sizes (the smaller last chunk).
  void matchesTorchOnTrainingChunk() {
    if (!Bf16Gemm::available()) QSKIP(Bf16Gemm::unavailableReason().c_str());
    const int64_t m = 256, k = 512, n = 32768;
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(20261201);
    const torch::Tensor a = at::randn({m, k}, generator, torch::kFloat32);
    const torch::Tensor b = at::randn({k, n}, generator, torch::kFloat32) / std::sqrt(double(k));
    const torch::Tensor reference = torch::mm(roundedToBf16(a), roundedToBf16(b));

    Bf16Gemm gemm;
    gemm.prepareB(b.data_ptr<float>(), k, n);
    QCOMPARE(gemm.preparedK(), k);
    QCOMPARE(gemm.preparedN(), n);
    torch::Tensor c = torch::full({m, n}, std::nan(""));
    gemm.multiply(a.data_ptr<float>(), c.data_ptr<float>(), m);
    const double error = worstScaledError(c, reference, a, b);
    qInfo("256x512x32768 (%s): worst error %.3g of sum|a||b|", gemm.implementation().c_str(),
          error);
    QVERIFY2(error <= kRelative, qPrintable(QString::number(error)));

    // Row chunks of 100 and 156 with the same prepared B.
    torch::Tensor chunked = torch::full({m, n}, std::nan(""));
    gemm.multiply(a.data_ptr<float>(), chunked.data_ptr<float>(), 100);
    gemm.multiply(a.data_ptr<float>() + 100 * k, chunked.data_ptr<float>() + 100 * n, m - 100);
    const double chunkError = worstScaledError(chunked, reference, a, b);
    QVERIFY2(chunkError <= kRelative, qPrintable(QString::number(chunkError)));

    const double fp32Error =
        worstScaledError(fp32Product(sae::GemmKernel::Kind::OneDnn, a, b), reference, a, b);
    qInfo("  fp32 onednn-sgemm on unrounded inputs: %.3g", fp32Error);
    QVERIFY2(fp32Error > 10 * kRelative, qPrintable(QString::number(fp32Error)));
  }

  // prepareB keeps a copy (later changes to b do not leak in) and switching shapes on one
  // object reuses the right primitive.
  void preparedCopyAndShapeSwitches() {
    if (!Bf16Gemm::available()) QSKIP(Bf16Gemm::unavailableReason().c_str());
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
    Bf16Gemm gemm;
    for (const auto& [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{5, 64, 128},
                                  {3, 7, 33},
                                  {5, 64, 128},
                                  {40, 33, 65}}) {
      const torch::Tensor a = at::randn({m, k}, generator, torch::kFloat32);
      torch::Tensor b = at::randn({k, n}, generator, torch::kFloat32);
      const torch::Tensor original = b.clone();
      const torch::Tensor reference = torch::mm(roundedToBf16(a), roundedToBf16(b));
      gemm.prepareB(b.data_ptr<float>(), k, n);
      b.fill_(1e6);  // must not matter any more
      torch::Tensor c = torch::full({m, n}, std::nan(""));
      gemm.multiply(a.data_ptr<float>(), c.data_ptr<float>(), m);
      const double error = worstScaledError(c, reference, a, original);
      QVERIFY2(error <= kRelative, qPrintable(QString::number(error)));
    }
  }

  void reportsMisuse() {
    Bf16Gemm gemm;
    float a = 1, c = 42;
    try {
      gemm.multiply(&a, &c, 1);
      QFAIL("multiply without prepareB did not throw");
    } catch (const std::runtime_error& e) {
      QVERIFY2(std::string(e.what()).find("prepareB") != std::string::npos, e.what());
    }
    try {
      gemm.prepareB(&a, 0, 5);
      QFAIL("prepareB of a 0x5 matrix did not throw");
    } catch (const std::runtime_error& e) {
      QVERIFY2(std::string(e.what()).find("0x5") != std::string::npos, e.what());
    }
    if (!Bf16Gemm::available()) return;
    gemm.prepareB(&a, 1, 1);
    gemm.multiply(&a, &c, 0);  // no rows: nothing written
    QCOMPARE(c, 42.0f);
  }
};

QTEST_APPLESS_MAIN(TestBf16Gemm)
#include "tst_bf16_gemm.moc"
