// GradientClipping, AdamOptimizer and a whole SAELens 1.5 optimiser step (renormalise, forward,
// backward, clip at 1.0, remove the parallel gradient, Adam) against
// tests/reference/step_reference.py, which runs the real torch 1.13 clip_grad_norm_ and Adam.
// The step tests run three times: with autograd on Sae::forward, and with SparseTrainingStep's
// sparse and chunked dense paths forced on (where they apply; ghost-grad steps with dead latents
// and lp_norm 2 fall back to autograd).
#include <string>
#include <thread>

#include <torch/torch.h>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "sae/Sae.h"
#include "support/JsonFixtures.h"
#include "support/TensorCompare.h"
#include "train/AdamOptimizer.h"
#include "train/GradientClipping.h"
#include "train/SparseTrainingStep.h"

using nlohmann::json;
using sae::AdamOptimizer;
using sae::GradientClipping;
using sae::Sae;
using sae::SaeOptions;
using saetest::loadFixture;
using saetest::maskFromJson;
using saetest::paramsFromJson;
using saetest::tensorFromJson;

namespace {

using saetest::close;
using saetest::compareTensors;

SaeOptions optionsFromJson(const json& o) {
  return saetest::smallSaeOptionsFromJson(o);
}

struct StepResult {
  sae::SaeForward out;
  double totalNorm;
};

// One training step in SAELens 1.5.0's order (train_sae_on_language_model.py, _train_step),
// through `step` (dense, sparse or chunked).
StepResult trainStep(Sae& sae, sae::SparseTrainingStep& step, AdamOptimizer& optimizer,
                     const torch::Tensor& x, double lr, double l1Coefficient,
                     const torch::Tensor& deadMask) {
  if (sae.options().normalize_sae_decoder) sae.setDecoderNormToUnitNorm();
  auto out = step.forward(x, l1Coefficient, deadMask);
  optimizer.zeroGrad();
  step.backward(out);
  const double totalNorm = GradientClipping::clipByTotalNorm(sae.trainableParameters(), 1.0);
  if (sae.options().normalize_sae_decoder) sae.removeGradientParallelToDecoderDirections();
  optimizer.step(lr);
  return {out, totalNorm};
}

}  // namespace

class TestAdamStep : public QObject {
  Q_OBJECT

  json fixture_;

  void compareParams(const std::string& label, const Sae& sae, const json& expected) {
    const std::pair<const char*, const torch::Tensor*> params[] = {
        {"W_enc", &sae.W_enc}, {"b_enc", &sae.b_enc}, {"W_dec", &sae.W_dec}, {"b_dec", &sae.b_dec}};
    for (const auto& [name, tensor] : params) {
      const auto message =
          compareTensors(label + " " + name, *tensor, tensorFromJson(expected[name]), 1e-6, 1e-5);
      if (!message.empty()) QFAIL(message.c_str());
    }
  }

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
    fixture_ = loadFixture("sae/steps.json");
  }

  // clip_grad_norm_(params, 1.0): total norm (rel 1e-6) and clipped gradients (1e-7 abs,
  // 1e-6 rel), below the limit (unchanged) and above it (scaled to norm 1).
  void clippingMatchesTorch() {
    for (const auto& c : fixture_["clipping"]) {
      std::vector<torch::Tensor> params;
      for (const auto& g : c["grads_before"]) {
        auto grad = tensorFromJson(g);
        auto p = torch::zeros(grad.sizes(), torch::requires_grad());
        p.mutable_grad() = grad;
        params.push_back(p);
      }
      params.push_back(torch::zeros({3}, torch::requires_grad()));  // no grad: skipped
      const double total = GradientClipping::clipByTotalNorm(params, 1.0);
      QVERIFY(close(total, c["total_norm"].get<double>(), 0, 1e-6));
      for (size_t i = 0; i < c["grads_after"].size(); ++i) {
        const auto message = compareTensors("clipped grad " + std::to_string(i), params[i].grad(),
                                            tensorFromJson(c["grads_after"][i]), 1e-7, 1e-6);
        QVERIFY2(message.empty(), message.c_str());
      }
      QVERIFY(!params.back().grad().defined());
    }
    QCOMPARE(GradientClipping::clipByTotalNorm({torch::zeros({2}, torch::requires_grad())}, 1.0),
             0.0);
  }

  // torch.optim.Adam with given gradients over 5 steps of varying lr, betas (0, 0.999) and
  // (0.9, 0.999): parameters after every step and the final moments (1e-7 abs, 1e-6 rel).
  void adamMatchesTorch() {
    for (const auto& c : fixture_["adam"]) {
      auto param = tensorFromJson(c["start"]).requires_grad_(true);
      AdamOptimizer optimizer({param}, c["betas"][0].get<double>(), c["betas"][1].get<double>());
      for (size_t s = 0; s < c["grads"].size(); ++s) {
        param.mutable_grad() = tensorFromJson(c["grads"][s]);
        optimizer.step(fixture_["lrs"][s].get<double>());
        const auto message = compareTensors(
            "beta1 " + std::to_string(c["betas"][0].get<double>()) + " step " + std::to_string(s),
            param, tensorFromJson(c["params_after"][s]), 1e-7, 1e-6);
        QVERIFY2(message.empty(), message.c_str());
      }
      QCOMPARE(optimizer.stepCount(), int64_t(5));
      auto message = compareTensors("exp_avg", optimizer.expAvg()[0], tensorFromJson(c["exp_avg"]),
                                    1e-7, 1e-6);
      QVERIFY2(message.empty(), message.c_str());
      message = compareTensors("exp_avg_sq", optimizer.expAvgSq()[0],
                               tensorFromJson(c["exp_avg_sq"]), 1e-7, 1e-6);
      QVERIFY2(message.empty(), message.c_str());
      optimizer.zeroGrad();
      QVERIFY(!param.grad().defined());
    }
  }

  // One full step: total norm before clipping, the processed gradients (clipped, parallel part
  // removed) and the weights after Adam (1e-6 abs, 1e-5 rel).
  void singleStep_data() {
    QTest::addColumn<int>("path");
    QTest::newRow("dense") << static_cast<int>(sae::StepPath::Dense);
    QTest::newRow("sparse") << static_cast<int>(sae::StepPath::Sparse);
    QTest::newRow("chunked") << static_cast<int>(sae::StepPath::Chunked);
  }

  void singleStep() {
    QFETCH(int, path);
    const json& c = fixture_["single_step"];
    Sae sae(optionsFromJson(c["options"]));
    sae.loadTensors(paramsFromJson(fixture_["params"]), "steps.json");
    AdamOptimizer optimizer(sae.trainableParameters(), fixture_["betas"][0].get<double>(),
                            fixture_["betas"][1].get<double>());
    sae::SparseTrainingStep step(sae);
    step.setPath(static_cast<sae::StepPath>(path));
    const auto result = trainStep(sae, step, optimizer, tensorFromJson(fixture_["batches"][0]),
                                  c["lr"].get<double>(), c["l1_coefficient"].get<double>(), {});
    QCOMPARE(step.lastPath(), static_cast<sae::StepPath>(path));
    QVERIFY(close(result.out.loss.item<double>(), c["loss"].get<double>(), 1e-6, 1e-5));
    QVERIFY(close(result.totalNorm, c["total_norm"].get<double>(), 1e-6, 1e-5));
    const std::pair<const char*, const torch::Tensor*> params[] = {
        {"W_enc", &sae.W_enc}, {"b_enc", &sae.b_enc}, {"W_dec", &sae.W_dec}, {"b_dec", &sae.b_dec}};
    for (const auto& [name, tensor] : params) {
      const auto message = compareTensors(std::string("grad ") + name, tensor->grad(),
                                          tensorFromJson(c["grads"][name]), 1e-6, 1e-5);
      QVERIFY2(message.empty(), message.c_str());
    }
    compareParams("after step", sae, c["params_after"]);
  }

  void fiveSteps_data() {
    QTest::addColumn<int>("index");
    QTest::addColumn<int>("path");
    int i = 0;
    for (const auto& c : fixture_["sequences"]) {
      const std::string name = c["name"].get<std::string>();
      QTest::newRow((name + " dense").c_str()) << i << static_cast<int>(sae::StepPath::Dense);
      QTest::newRow((name + " sparse").c_str()) << i << static_cast<int>(sae::StepPath::Sparse);
      QTest::newRow((name + " chunked").c_str()) << i << static_cast<int>(sae::StepPath::Chunked);
      ++i;
    }
  }

  // 5 consecutive steps with a different lr and L1 coefficient each (SAELens default
  // options; the notebook's; ghost grads with a dead mask): per-step losses and total norms
  // (1e-6 abs, 1e-5 rel) and the weights after the fifth step (1e-6 abs, 1e-5 rel).
  void fiveSteps() {
    QFETCH(int, index);
    QFETCH(int, path);
    const auto stepPath = static_cast<sae::StepPath>(path);
    const json& c = fixture_["sequences"][static_cast<size_t>(index)];
    Sae sae(optionsFromJson(c["options"]));
    sae.loadTensors(paramsFromJson(fixture_["params"]), "steps.json");
    AdamOptimizer optimizer(sae.trainableParameters(), fixture_["betas"][0].get<double>(),
                            fixture_["betas"][1].get<double>());
    sae::SparseTrainingStep step(sae);
    step.setPath(stepPath);
    const auto mask = maskFromJson(fixture_["dead_mask"]);
    for (size_t s = 0; s < c["steps"].size(); ++s) {
      const json& expected = c["steps"][s];
      const auto result = trainStep(sae, step, optimizer, tensorFromJson(fixture_["batches"][s]),
                                    fixture_["lrs"][s].get<double>(),
                                    fixture_["l1_coefficients"][s].get<double>(), mask);
      // The sparse or chunked step runs wherever it applies (not for ghost grads with dead
      // latents).
      const bool applies =
          sae::SparseTrainingStep::applicable(sae, tensorFromJson(fixture_["batches"][s]), mask);
      QCOMPARE(step.lastPath(), applies ? stepPath : sae::StepPath::Dense);
      const std::pair<const char*, double> values[] = {
          {"loss", result.out.loss.item<double>()},
          {"mse_loss", result.out.mse_loss.item<double>()},
          {"l1_loss", result.out.l1_loss.item<double>()},
          {"ghost_grad_loss", result.out.ghost_grad_loss.item<double>()},
          {"total_norm", result.totalNorm}};
      for (const auto& [key, value] : values) {
        QVERIFY2(close(value, expected[key].get<double>(), 1e-6, 1e-5),
                 qPrintable(QString("step %1 %2: %3, reference %4")
                                .arg(s)
                                .arg(key)
                                .arg(value, 0, 'g', 9)
                                .arg(expected[key].get<double>(), 0, 'g', 9)));
      }
    }
    compareParams("after 5 steps", sae, c["params_after"]);
  }
};

QTEST_APPLESS_MAIN(TestAdamStep)
#include "tst_adam_step.moc"
