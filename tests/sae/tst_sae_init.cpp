// Sae initialisation against tests/reference/sae_reference.py: every init path, seed 42,
// weights bit-identical to PyTorch's, and the generator advanced by the same number of draws.
#include <string>
#include <thread>

#include <torch/torch.h>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "sae/Sae.h"
#include "support/JsonFixtures.h"

using nlohmann::json;
using sae::Sae;
using sae::SaeOptions;
using saetest::loadFixture;
using saetest::tensorFromJson;

namespace {

SaeOptions optionsFromJson(const json& o, int64_t dIn, int64_t dSae) {
  SaeOptions options;
  options.d_in = dIn;
  options.d_sae = dSae;
  options.normalize_sae_decoder = o.value("normalize_sae_decoder", true);
  options.decoder_orthogonal_init = o.value("decoder_orthogonal_init", false);
  options.decoder_heuristic_init = o.value("decoder_heuristic_init", false);
  options.init_encoder_as_decoder_transpose = o.value("init_encoder_as_decoder_transpose", false);
  return options;
}

}  // namespace

class TestSaeInit : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  }

  void matchesPyTorchBitForBit_data() {
    QTest::addColumn<int>("index");
    const json fixture = loadFixture("sae/init.json");
    int i = 0;
    for (const auto& c : fixture["cases"]) {
      QTest::newRow(c["name"].get<std::string>().c_str()) << i++;
    }
  }

  // W_enc and W_dec exactly equal (torch::equal, no tolerance) and the next torch::rand draw
  // after construction equal too, i.e. the same number of draws was consumed.
  void matchesPyTorchBitForBit() {
    QFETCH(int, index);
    const json fixture = loadFixture("sae/init.json");
    const json& c = fixture["cases"][static_cast<size_t>(index)];
    const auto options = optionsFromJson(c["options"], fixture["d_in"].get<int64_t>(),
                                         fixture["d_sae"].get<int64_t>());
    torch::manual_seed(c["seed"].get<uint64_t>());
    const Sae sae(options);
    const auto randAfter = torch::rand({4});
    QVERIFY2(torch::equal(sae.W_dec, tensorFromJson(c["W_dec"])), "W_dec differs from PyTorch");
    QVERIFY2(torch::equal(sae.W_enc, tensorFromJson(c["W_enc"])), "W_enc differs from PyTorch");
    QVERIFY2(torch::equal(randAfter, tensorFromJson(c["rand_after_init"])),
             "generator advanced by a different number of draws");

    QVERIFY(sae.W_enc.is_leaf() && sae.W_enc.requires_grad());
    QVERIFY(sae.W_dec.is_leaf() && sae.W_dec.requires_grad());
    QVERIFY(sae.b_enc.is_leaf() && sae.b_enc.requires_grad());
    QVERIFY(sae.b_dec.is_leaf() && sae.b_dec.requires_grad());
    QVERIFY(!sae.scaling_factor.requires_grad());
    QVERIFY(torch::equal(sae.b_enc, torch::zeros({options.d_sae})));
    QVERIFY(torch::equal(sae.b_dec, torch::zeros({options.d_in})));
    QVERIFY(torch::equal(sae.scaling_factor, torch::ones({options.d_sae})));
    QCOMPARE(sae.W_enc.sizes().vec(), (std::vector<int64_t>{options.d_in, options.d_sae}));
    QCOMPARE(sae.W_dec.sizes().vec(), (std::vector<int64_t>{options.d_sae, options.d_in}));

    const auto norms = sae.W_dec.detach().norm(2, {1});
    if (options.decoder_heuristic_init) {
      // Rows of norm 0.1, every entry positive (uniform [0, 1) draw).
      QVERIFY((norms - 0.1).abs().max().item<double>() < 1e-6);
      QVERIFY(sae.W_dec.min().item<double>() > 0.0);
    } else if (options.normalize_sae_decoder) {
      QVERIFY((norms - 1.0).abs().max().item<double>() < 1e-6);
    }
  }

  // The orthogonal init in float64 draws in float64 (as Python does) and gives orthonormal
  // decoder columns.
  void orthogonalFloat64() {
    SaeOptions options;
    options.d_in = 16;
    options.d_sae = 64;
    options.decoder_orthogonal_init = true;
    options.normalize_sae_decoder = false;
    options.dtype = torch::kFloat64;
    torch::manual_seed(3);
    const Sae sae(options);
    QCOMPARE(sae.W_dec.scalar_type(), torch::kFloat64);
    const auto gram = torch::matmul(sae.W_dec.detach().t(), sae.W_dec.detach());
    QVERIFY((gram - torch::eye(16, torch::kFloat64)).abs().max().item<double>() < 1e-12);
  }
};

QTEST_APPLESS_MAIN(TestSaeInit)
#include "tst_sae_init.moc"
