// Sae::forward against tests/reference/sae_reference.py: activations, every loss term and the
// gradients of W_enc, b_enc, W_dec, b_dec for each option that changes the computation.
// Tolerance (float32): |actual - expected| <= 1e-6 + 1e-5 * |expected|, element-wise.
#include <string>
#include <thread>

#include <torch/torch.h>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "sae/Sae.h"
#include "support/JsonFixtures.h"
#include "support/TensorCompare.h"

using nlohmann::json;
using sae::Sae;
using sae::SaeForward;
using sae::SaeOptions;
using saetest::loadFixture;
using saetest::maskFromJson;
using saetest::paramsFromJson;
using saetest::tensorFromJson;

namespace {

constexpr double kAtol = 1e-6;
constexpr double kRtol = 1e-5;

// Empty string when close; otherwise where and by how much it is not.
std::string compareTensors(const std::string& what, const torch::Tensor& actual,
                           const torch::Tensor& expected) {
  return saetest::compareTensors(what, actual, expected, kAtol, kRtol);
}

bool closeScalar(double actual, double expected) {
  return saetest::close(actual, expected, kAtol, kRtol);
}

// The step fixtures' options plus the ones only the forward fixture varies.
SaeOptions optionsFromJson(const json& o) {
  SaeOptions options = saetest::smallSaeOptionsFromJson(o);
  options.activation_fn = o.value("activation_fn", std::string("relu"));
  options.noise_scale = o.value("noise_scale", 0.0);
  options.lp_norm = o.value("lp_norm", 1.0);
  options.mse_loss_normalization = o.value("mse_loss_normalization", std::string());
  return options;
}

}  // namespace

class TestSaeForward : public QObject {
  Q_OBJECT

  json fixture_;

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
    fixture_ = loadFixture("sae/forward.json");
  }

  void matchesReference_data() {
    QTest::addColumn<int>("index");
    int i = 0;
    for (const auto& c : fixture_["cases"])
      QTest::newRow(c["name"].get<std::string>().c_str()) << i++;
  }

  // Values and gradients of one option set (default; b_dec not subtracted; dense_batch MSE;
  // Lp with p = 2; decoder-norm-scaled sparsity with p = 1 and 2; tanh-relu; ghost grads with
  // a dead mask, also under dense_batch; seeded noise).
  void matchesReference() {
    QFETCH(int, index);
    const json& c = fixture_["cases"][static_cast<size_t>(index)];
    Sae sae(optionsFromJson(c["options"]));
    sae.loadTensors(paramsFromJson(fixture_["params"]), "forward.json");
    const auto x = tensorFromJson(fixture_["x"]);
    const auto mask =
        c["use_dead_mask"].get<bool>() ? maskFromJson(fixture_["dead_mask"]) : torch::Tensor();
    if (!c["noise_seed"].is_null()) torch::manual_seed(c["noise_seed"].get<uint64_t>());
    const SaeForward out =
        sae.forward(x, fixture_["l1_coefficient"].get<double>(), mask, c["training"].get<bool>());
    out.loss.backward();

    for (const char* key : {"mse_loss", "sparsity", "l1_loss", "ghost_grad_loss", "loss"}) {
      const torch::Tensor& value = key == std::string("mse_loss")   ? out.mse_loss
                                   : key == std::string("sparsity") ? out.sparsity
                                   : key == std::string("l1_loss")  ? out.l1_loss
                                   : key == std::string("loss")     ? out.loss
                                                                    : out.ghost_grad_loss;
      QCOMPARE(value.dim(), 0);
      QVERIFY2(closeScalar(value.item<double>(), c[key].get<double>()),
               qPrintable(QString("%1: %2, reference %3")
                              .arg(key)
                              .arg(value.item<double>(), 0, 'g', 9)
                              .arg(c[key].get<double>(), 0, 'g', 9)));
    }
    auto check = [&](const std::string& what, const torch::Tensor& actual, const json& expected) {
      const auto message = compareTensors(what, actual, tensorFromJson(expected));
      if (!message.empty()) QFAIL(message.c_str());
    };
    if (c.contains("sae_out")) check("sae_out", out.sae_out, c["sae_out"]);
    if (c.contains("feature_acts")) check("feature_acts", out.feature_acts, c["feature_acts"]);
    if (c.contains("hidden_pre")) check("hidden_pre", out.hidden_pre, c["hidden_pre"]);
    check("grad W_enc", sae.W_enc.grad(), c["grads"]["W_enc"]);
    check("grad b_enc", sae.b_enc.grad(), c["grads"]["b_enc"]);
    check("grad W_dec", sae.W_dec.grad(), c["grads"]["W_dec"]);
    check("grad b_dec", sae.b_dec.grad(), c["grads"]["b_dec"]);
    QVERIFY(!sae.scaling_factor.grad().defined());
  }

  // Ghost grads are gated on training and on a non-empty dead mask: otherwise the loss is the
  // default case's exactly.
  void ghostGradsInactiveCases() {
    const json& reference = fixture_["cases"][0];
    QCOMPARE(reference["name"].get<std::string>(), std::string("default"));
    SaeOptions options = optionsFromJson(json::object());
    options.use_ghost_grads = true;
    Sae sae(options);
    sae.loadTensors(paramsFromJson(fixture_["params"]), "forward.json");
    const auto x = tensorFromJson(fixture_["x"]);
    const double coefficient = fixture_["l1_coefficient"].get<double>();
    const auto mask = maskFromJson(fixture_["dead_mask"]);
    for (const auto& out : {sae.forward(x, coefficient, mask, /*training=*/false),
                            sae.forward(x, coefficient, torch::zeros({64}, torch::kBool), true),
                            sae.forward(x, coefficient, torch::Tensor(), true)}) {
      QCOMPARE(out.ghost_grad_loss.item<double>(), 0.0);
      QVERIFY(closeScalar(out.loss.item<double>(), reference["loss"].get<double>()));
    }
  }

  // Noise is applied in eval mode too (SAELens does not gate it on training).
  void noiseAlsoInEval() {
    const json* noiseCase = nullptr;
    for (const auto& c : fixture_["cases"]) {
      if (c["name"] == "noise") noiseCase = &c;
    }
    QVERIFY(noiseCase);
    Sae sae(optionsFromJson((*noiseCase)["options"]));
    sae.loadTensors(paramsFromJson(fixture_["params"]), "forward.json");
    torch::manual_seed((*noiseCase)["noise_seed"].get<uint64_t>());
    const auto out = sae.forward(tensorFromJson(fixture_["x"]),
                                 fixture_["l1_coefficient"].get<double>(), {}, /*training=*/false);
    const auto message = compareTensors("feature_acts (eval)", out.feature_acts,
                                        tensorFromJson((*noiseCase)["feature_acts"]));
    QVERIFY2(message.empty(), message.c_str());
  }

  // l1_loss is coefficient * sparsity and the scheduler's coefficient is used as passed.
  void l1ScalesWithCoefficient() {
    Sae sae(optionsFromJson(json::object()));
    sae.loadTensors(paramsFromJson(fixture_["params"]), "forward.json");
    const auto x = tensorFromJson(fixture_["x"]);
    const auto zero = sae.forward(x, 0.0);
    QCOMPARE(zero.l1_loss.item<double>(), 0.0);
    QVERIFY(closeScalar(zero.loss.item<double>(), zero.mse_loss.item<double>()));
    const auto two = sae.forward(x, 2.0);
    QVERIFY(closeScalar(two.l1_loss.item<double>(), 2.0 * two.sparsity.item<double>()));
  }
};

QTEST_APPLESS_MAIN(TestSaeForward)
#include "tst_sae_forward.moc"
