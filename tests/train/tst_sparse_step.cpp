// SparseTrainingStep's sparse and chunked dense paths against autograd on Sae::forward: the same
// losses, gradients and weights after an Adam step, at densities from 0.1% to 50% (sparse) and
// 0.1% to 100% (chunked; set by a calibrated negative b_enc), with and without b_dec
// subtraction, decoder-norm scaling, a non-unit scaling_factor and dense_batch MSE
// normalisation, the chunked path over a batch that is not a multiple of its chunk; then 20
// training steps side by side. GemmKernel's transposed and accumulating products against a
// float64 torch product, for both kernels.
//
// Tolerance ("1e-5 relative"): max |sparse - dense| <= 1e-5 * max |dense| per tensor, for the
// losses, every gradient and the weights after one Adam step. The two paths sum the same terms
// in different orders (float32), so element-wise relative checks would fail on the few gradient
// entries that cancel to near zero; the tensor's scale is the meaningful reference.
#include <QtTest>

#include <cmath>
#include <string>
#include <thread>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "sae/Sae.h"
#include "train/AdamOptimizer.h"
#include "train/Bf16Gemm.h"
#include "train/GemmKernel.h"
#include "train/GradientClipping.h"
#include "train/SparseTrainingStep.h"

using sae::AdamOptimizer;
using sae::GemmKernel;
using sae::Sae;
using sae::SaeForward;
using sae::SaeOptions;
using sae::SparseTrainingStep;
using sae::StepPath;

namespace {

constexpr double kRelative = 1e-5;
// Chunk rows of the chunked cases: the 128-row batches split 48 + 48 + 32.
constexpr int64_t kTestChunkRows = 48;

// Empty when max |a - b| <= rel * max |b| (+ a floor for all-zero tensors).
std::string compareScaled(const std::string& what, const torch::Tensor& actual,
                          const torch::Tensor& expected, double rel) {
  if (!actual.defined() || !expected.defined()) return what + ": undefined tensor";
  if (actual.sizes() != expected.sizes()) return what + ": shape differs";
  const auto a = actual.detach().to(torch::kFloat64);
  const auto e = expected.detach().to(torch::kFloat64);
  const double scale = e.abs().max().item<double>();
  const double worst = (a - e).abs().max().item<double>();
  if (worst <= rel * scale + 1e-30) return {};
  return what + ": max difference " + std::to_string(worst) + " > " + std::to_string(rel) +
         " * max |dense| " + std::to_string(scale);
}

struct Setup {
  SaeOptions options;
  double density = 0.01;
  bool randomScaling = false;
};

SaeOptions baseOptions(bool applyBDec, bool scaleByNorm) {
  SaeOptions o;
  o.d_in = 32;
  o.d_sae = 1024;
  o.apply_b_dec_to_input = applyBDec;
  o.scale_sparsity_penalty_by_decoder_norm = scaleByNorm;
  o.normalize_sae_decoder = true;
  return o;
}

// A fresh SAE whose b_enc puts `density` of the (row, latent) pairs of x above zero, with the
// threshold half-way between two pre-activations so that no entry sits at the ReLU's kink
// (float rounding could otherwise flip it between the two paths).
std::unique_ptr<Sae> makeSae(const Setup& setup, const torch::Tensor& x) {
  torch::manual_seed(7);
  auto sae = std::make_unique<Sae>(setup.options);
  torch::NoGradGuard noGrad;
  sae->b_dec.copy_(torch::randn({setup.options.d_in}) * 0.3);
  if (setup.randomScaling) sae->scaling_factor.copy_(torch::rand({setup.options.d_sae}) + 0.5);
  const torch::Tensor jitter = torch::randn({setup.options.d_sae}) * 0.05;
  const torch::Tensor saeIn = setup.options.apply_b_dec_to_input ? x - sae->b_dec : x;
  const torch::Tensor pre = (torch::mm(saeIn, sae->W_enc) + jitter).flatten();
  const auto sorted = std::get<0>(pre.sort(0, /*descending=*/true));
  const int64_t keep = std::max<int64_t>(1, std::llround(setup.density * pre.numel()));
  // Density 1: every pre-activation 1 above zero at least.
  const double threshold =
      keep >= pre.numel() ? sorted[-1].item<double>() - 1.0
                          : 0.5 * (sorted[keep - 1].item<double>() + sorted[keep].item<double>());
  sae->b_enc.copy_(jitter - threshold);
  return sae;
}

std::unique_ptr<Sae> copyOf(const Sae& source) {
  auto copy = std::make_unique<Sae>(source.options());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, tensor] : source.namedTensors())
    tensors.emplace_back(name, tensor.detach().clone());
  copy->loadTensors(tensors, "copy");
  return copy;
}

const char* kParamNames[] = {"W_enc", "b_enc", "W_dec", "b_dec"};

// A step on the path asked for (the chunked one over kTestChunkRows-row chunks).
std::unique_ptr<SparseTrainingStep> makeStep(Sae& sae, StepPath path) {
  auto step = std::make_unique<SparseTrainingStep>(sae);
  step->setPath(path);
  step->setChunkedRows(kTestChunkRows);
  return step;
}

const char* pathName(StepPath path) {
  return path == StepPath::Sparse ? "sparse" : path == StepPath::Chunked ? "chunked" : "dense";
}

}  // namespace

class TestSparseStep : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() { torch::set_num_threads(std::max(1u, std::thread::hardware_concurrency())); }

  void matchesAutograd_data() {
    QTest::addColumn<int>("path");
    QTest::addColumn<double>("density");
    QTest::addColumn<bool>("applyBDec");
    QTest::addColumn<bool>("scaleByNorm");
    QTest::addColumn<bool>("randomScaling");
    QTest::addColumn<QString>("normalization");
    for (const StepPath path : {StepPath::Sparse, StepPath::Chunked}) {
      // The sparse path's CSR at 100% would only be slow; the chunked path is the one for it.
      const std::vector<double> densities = path == StepPath::Sparse
                                                ? std::vector<double>{0.001, 0.01, 0.1, 0.5}
                                                : std::vector<double>{0.001, 0.01, 0.1, 0.5, 1.0};
      for (const double density : densities) {
        for (const bool apply : {false, true}) {
          for (const bool scale : {false, true}) {
            const QString name = QString("%1, density %2%, b_dec %3, norm-scaled %4")
                                     .arg(pathName(path))
                                     .arg(density * 100)
                                     .arg(apply ? "on" : "off")
                                     .arg(scale ? "on" : "off");
            QTest::newRow(qPrintable(name))
                << static_cast<int>(path) << density << apply << scale << false << QString();
          }
        }
      }
      QTest::newRow(qPrintable(QString("%1, scaling_factor != 1").arg(pathName(path))))
          << static_cast<int>(path) << 0.02 << true << true << true << QString();
      QTest::newRow(qPrintable(QString("%1, dense_batch mse").arg(pathName(path))))
          << static_cast<int>(path) << 0.02 << true << true << false << QString("dense_batch");
    }
    QTest::newRow("chunked, density 50%, scaling_factor != 1, dense_batch")
        << static_cast<int>(StepPath::Chunked) << 0.5 << true << true << true
        << QString("dense_batch");
  }

  // One step: losses, sae_out, firing counts, every gradient, and the weights after Adam.
  void matchesAutograd() {
    QFETCH(int, path);
    QFETCH(double, density);
    QFETCH(bool, applyBDec);
    QFETCH(bool, scaleByNorm);
    QFETCH(bool, randomScaling);
    QFETCH(QString, normalization);
    Setup setup;
    setup.options = baseOptions(applyBDec, scaleByNorm);
    setup.options.mse_loss_normalization = normalization.toStdString();
    setup.density = density;
    setup.randomScaling = randomScaling;
    torch::manual_seed(3);
    const torch::Tensor x = torch::randn({128, setup.options.d_in});
    auto dense = makeSae(setup, x);
    auto sparse = copyOf(*dense);
    const double l1 = 0.8;

    AdamOptimizer denseAdam(dense->trainableParameters(), 0.9, 0.999);
    const SaeForward d = dense->forward(x, l1, {}, true);
    denseAdam.zeroGrad();
    d.loss.backward();

    AdamOptimizer sparseAdam(sparse->trainableParameters(), 0.9, 0.999);
    auto stepPtr = makeStep(*sparse, static_cast<StepPath>(path));
    SparseTrainingStep& step = *stepPtr;
    const SaeForward s = step.forward(x, l1, {});
    sparseAdam.zeroGrad();
    step.backward(s);
    QCOMPARE(step.lastPath(), static_cast<StepPath>(path));
    QVERIFY(step.lastUsedOwnGradients());
    QVERIFY(!s.loss.requires_grad());
    // 128 rows in chunks of 48: the last chunk is a partial one.
    if (path == static_cast<int>(StepPath::Chunked)) QCOMPARE(step.chunkedRows(), kTestChunkRows);

    // The calibration hit the density asked for.
    const double measured = (d.feature_acts > 0).to(torch::kFloat64).mean().item<double>();
    QVERIFY2(std::abs(measured - density) < 1e-3 + 0.01 * density,
             qPrintable(QString::number(measured)));
    QVERIFY2(std::abs(step.density() - measured) <= 1e-12,
             qPrintable(QString("%1 vs %2").arg(step.density()).arg(measured)));
    QVERIFY(torch::equal(step.firingCounts(), (d.feature_acts > 0).sum(0).to(torch::kFloat32)));

    const std::pair<const char*, std::pair<torch::Tensor, torch::Tensor>> values[] = {
        {"loss", {s.loss, d.loss}},
        {"mse_loss", {s.mse_loss, d.mse_loss}},
        {"l1_loss", {s.l1_loss, d.l1_loss}},
        {"sparsity", {s.sparsity, d.sparsity}},
        {"ghost_grad_loss", {s.ghost_grad_loss, d.ghost_grad_loss}},
        {"sae_out", {s.sae_out, d.sae_out}}};
    for (const auto& [name, pair] : values) {
      const auto message = compareScaled(name, pair.first, pair.second, kRelative);
      QVERIFY2(message.empty(), message.c_str());
    }
    const auto denseParams = dense->trainableParameters();
    const auto sparseParams = sparse->trainableParameters();
    for (size_t i = 0; i < denseParams.size(); ++i) {
      const auto message = compareScaled(std::string("grad ") + kParamNames[i],
                                         sparseParams[i].grad(), denseParams[i].grad(), kRelative);
      QVERIFY2(message.empty(), message.c_str());
    }
    denseAdam.step(1e-4);
    sparseAdam.step(1e-4);
    for (size_t i = 0; i < denseParams.size(); ++i) {
      const auto message = compareScaled(std::string("after Adam ") + kParamNames[i],
                                         sparseParams[i], denseParams[i], kRelative);
      QVERIFY2(message.empty(), message.c_str());
    }
  }

  // The first sparse step times the encoder kernels on its shape: that must not draw from
  // torch's default generator, or the activation store's shuffles (and so every later batch)
  // would depend on it (found by the trainer parity test with the sparse step forced on).
  void leavesDefaultGeneratorAlone() {
    SaeOptions o = baseOptions(false, false);
    o.d_sae = 96;  // a shape no other test measured
    Sae sae(o);
    const torch::Tensor x = torch::randn({40, o.d_in});
    SparseTrainingStep step(sae);
    step.setPath(StepPath::Sparse);
    torch::manual_seed(99);
    const torch::Tensor expected = torch::randn({8});
    torch::manual_seed(99);
    step.forward(x, 1.0, {});
    QVERIFY(step.lastWasSparse());
    QVERIFY(torch::equal(torch::randn({8}), expected));

    // The chunked step times its five products (this shape is above the 2^24 multiply-adds
    // below which no timing runs).
    SaeOptions big = baseOptions(false, false);
    big.d_in = 64;
    big.d_sae = 1040;
    Sae bigSae(big);
    const torch::Tensor bigX = torch::randn({256, big.d_in});
    SparseTrainingStep chunked(bigSae);
    chunked.setPath(StepPath::Chunked);
    torch::manual_seed(99);
    chunked.forward(bigX, 1.0, {});
    QCOMPARE(chunked.lastPath(), StepPath::Chunked);
    QCOMPARE(chunked.chunkedKernels().size(), size_t(5));
    QVERIFY(torch::equal(torch::randn({8}), expected));
  }

  // Both kernels, every transposition, with and without accumulation: C = op(A) op(B) (+ C)
  // within 1e-5 of max |C| of a float64 torch product of the same float32 inputs.
  void gemmKernelsMatchTorch() {
    const int64_t m = 37, k = 19, n = 53;
    torch::manual_seed(21);
    for (const auto kind : {GemmKernel::Kind::Torch, GemmKernel::Kind::OneDnn}) {
      for (const bool transA : {false, true}) {
        for (const bool transB : {false, true}) {
          for (const bool accumulate : {false, true}) {
            GemmKernel::Shape shape;
            shape.transA = transA;
            shape.transB = transB;
            shape.m = m;
            shape.k = k;
            shape.n = n;
            shape.accumulate = accumulate;
            const torch::Tensor a = transA ? torch::randn({k, m}) : torch::randn({m, k});
            const torch::Tensor b = transB ? torch::randn({n, k}) : torch::randn({k, n});
            const torch::Tensor c0 = torch::randn({m, n});
            torch::Tensor c = c0.clone();
            GemmKernel::multiply(kind, shape, a.data_ptr<float>(), b.data_ptr<float>(),
                                 c.data_ptr<float>());
            const torch::Tensor opA = (transA ? a.t() : a).to(torch::kFloat64);
            const torch::Tensor opB = (transB ? b.t() : b).to(torch::kFloat64);
            torch::Tensor expected = torch::mm(opA, opB);
            if (accumulate) expected += c0.to(torch::kFloat64);
            const auto message =
                compareScaled(GemmKernel::name(kind) + " " + shape.text(), c, expected, 1e-5);
            QVERIFY2(message.empty(), message.c_str());
          }
        }
      }
    }
  }

  // The chunked step reuses its workspaces: the gradients and sae_out of a second step (same
  // shapes) live where the first step's did.
  void chunkedReusesWorkspaces() {
    Setup setup;
    setup.options = baseOptions(true, true);
    setup.density = 0.3;
    torch::manual_seed(13);
    const torch::Tensor x = torch::randn({100, setup.options.d_in});
    auto sae = makeSae(setup, x);
    auto step = makeStep(*sae, StepPath::Chunked);
    AdamOptimizer adam(sae->trainableParameters(), 0.9, 0.999);
    std::vector<const void*> first;
    for (int i = 0; i < 2; ++i) {
      const SaeForward out = step->forward(x, 0.5, {});
      adam.zeroGrad();
      step->backward(out);
      QCOMPARE(step->lastPath(), StepPath::Chunked);
      std::vector<const void*> pointers = {out.sae_out.data_ptr()};
      for (const auto& p : sae->trainableParameters())
        pointers.push_back(p.grad().data_ptr());
      if (i == 0) {
        first = pointers;
      } else {
        QVERIFY(pointers == first);
      }
      adam.step(1e-3);
    }
  }

  void twentySteps_data() {
    QTest::addColumn<int>("path");
    QTest::newRow("sparse") << static_cast<int>(StepPath::Sparse);
    QTest::newRow("chunked") << static_cast<int>(StepPath::Chunked);
  }

  // 20 steps of the trainer's sequence (renormalise, forward, backward, clip, remove the
  // parallel gradient, Adam) on fresh batches: losses at every step within 1e-5 relative, the
  // final weights within 1e-4 relative (differences in rounding compound over the steps).
  void twentySteps() {
    QFETCH(int, path);
    Setup setup;
    setup.options = baseOptions(true, true);
    setup.density = 0.02;
    torch::manual_seed(11);
    const torch::Tensor first = torch::randn({128, setup.options.d_in});
    auto dense = makeSae(setup, first);
    auto sparse = copyOf(*dense);
    AdamOptimizer denseAdam(dense->trainableParameters(), 0.9, 0.999);
    AdamOptimizer sparseAdam(sparse->trainableParameters(), 0.9, 0.999);
    auto stepPtr = makeStep(*sparse, static_cast<StepPath>(path));
    SparseTrainingStep& step = *stepPtr;
    torch::manual_seed(12);
    for (int i = 0; i < 20; ++i) {
      const torch::Tensor x = i == 0 ? first : torch::randn({128, setup.options.d_in});
      dense->setDecoderNormToUnitNorm();
      sparse->setDecoderNormToUnitNorm();
      const SaeForward d = dense->forward(x, 0.5, {}, true);
      denseAdam.zeroGrad();
      d.loss.backward();
      const SaeForward s = step.forward(x, 0.5, {});
      sparseAdam.zeroGrad();
      step.backward(s);
      QCOMPARE(step.lastPath(), static_cast<StepPath>(path));
      for (const auto& [name, a, b] :
           {std::make_tuple("loss", s.loss, d.loss), std::make_tuple("mse", s.mse_loss, d.mse_loss),
            std::make_tuple("l1", s.l1_loss, d.l1_loss)}) {
        const auto message =
            compareScaled("step " + std::to_string(i) + " " + name, a, b, kRelative);
        QVERIFY2(message.empty(), message.c_str());
      }
      const double normD =
          sae::GradientClipping::clipByTotalNorm(dense->trainableParameters(), 1.0);
      const double normS =
          sae::GradientClipping::clipByTotalNorm(sparse->trainableParameters(), 1.0);
      QVERIFY2(std::abs(normS - normD) <= kRelative * normD, qPrintable(QString::number(i)));
      dense->removeGradientParallelToDecoderDirections();
      sparse->removeGradientParallelToDecoderDirections();
      denseAdam.step(1e-3);
      sparseAdam.step(1e-3);
    }
    const auto denseParams = dense->trainableParameters();
    const auto sparseParams = sparse->trainableParameters();
    for (size_t i = 0; i < denseParams.size(); ++i) {
      const auto message = compareScaled(std::string("after 20 steps ") + kParamNames[i],
                                         sparseParams[i], denseParams[i], 1e-4);
      QVERIFY2(message.empty(), message.c_str());
    }
  }

  // Auto picks the sparse step below the switch density and the chunked one above it (and the
  // sparse one again once the batches are sparse); configs the sparse and chunked steps cannot
  // reproduce run dense even when forced; NaN goes dense (where the trainer's guard sees it in
  // the loss).
  void pathChoice() {
    Setup setup;
    setup.options = baseOptions(false, true);
    torch::manual_seed(5);
    const torch::Tensor x = torch::randn({64, setup.options.d_in});

    setup.density = 0.01;
    auto sparseSae = makeSae(setup, x);
    SparseTrainingStep sparseStep(*sparseSae);
    QCOMPARE(sparseStep.path(), StepPath::Auto);
    sparseStep.forward(x, 1.0, {});
    QVERIFY(sparseStep.lastWasSparse());

    setup.density = 0.3;
    auto denseSae = makeSae(setup, x);
    SparseTrainingStep denseStep(*denseSae);
    auto out = denseStep.forward(x, 1.0, {});  // sparse attempted, too dense: chunked
    QCOMPARE(denseStep.lastPath(), StepPath::Chunked);
    QVERIFY(!denseStep.lastWasSparse());
    QVERIFY(denseStep.lastUsedOwnGradients());
    QVERIFY(!out.loss.requires_grad());
    QVERIFY(std::abs(denseStep.density() - 0.3) < 0.01);
    denseStep.forward(x, 1.0, {});  // still dense: straight to the chunked step
    QCOMPARE(denseStep.lastPath(), StepPath::Chunked);
    const torch::Tensor quiet = x.slice(0, 0, 8) * 0;  // only latents with b_enc > 0 fire
    denseStep.forward(quiet, 1.0, {});
    QCOMPARE(denseStep.lastPath(), StepPath::Chunked);
    QVERIFY(denseStep.density() < 0.05);
    denseStep.forward(quiet, 1.0, {});  // the last batch was sparse: sparse again
    QCOMPARE(denseStep.lastPath(), StepPath::Sparse);
    denseStep.setPath(StepPath::Sparse);
    denseStep.forward(x, 1.0, {});
    QVERIFY(denseStep.lastWasSparse());
    denseStep.setPath(StepPath::Dense);
    out = denseStep.forward(x, 1.0, {});
    QCOMPARE(denseStep.lastPath(), StepPath::Dense);
    QVERIFY(!denseStep.lastUsedOwnGradients());
    QVERIFY(out.loss.requires_grad());
    denseStep.setPath(StepPath::Chunked);
    sparseStep.setPath(StepPath::Chunked);
    sparseStep.forward(x, 1.0, {});  // forced: chunked even when sparse
    QCOMPARE(sparseStep.lastPath(), StepPath::Chunked);

    SaeOptions tanh = baseOptions(false, false);
    tanh.activation_fn = "tanh-relu";
    Sae tanhSae(tanh);
    SparseTrainingStep tanhStep(tanhSae);
    for (const StepPath path : {StepPath::Sparse, StepPath::Chunked, StepPath::Auto}) {
      tanhStep.setPath(path);
      tanhStep.forward(x, 1.0, {});
      QCOMPARE(tanhStep.lastPath(), StepPath::Dense);
    }

    SaeOptions ghost = baseOptions(false, false);
    ghost.use_ghost_grads = true;
    Sae ghostSae(ghost);
    SparseTrainingStep ghostStep(ghostSae);
    ghostStep.setPath(StepPath::Sparse);
    ghostStep.forward(x, 1.0, torch::zeros({ghost.d_sae}, torch::kBool));  // no dead latents
    QVERIFY(ghostStep.lastWasSparse());
    ghostStep.forward(x, 1.0, torch::ones({ghost.d_sae}, torch::kBool));
    QVERIFY(!ghostStep.lastWasSparse());
    ghostStep.setPath(StepPath::Chunked);
    ghostStep.forward(x, 1.0, torch::zeros({ghost.d_sae}, torch::kBool));
    QCOMPARE(ghostStep.lastPath(), StepPath::Chunked);
    ghostStep.forward(x, 1.0, torch::ones({ghost.d_sae}, torch::kBool));
    QCOMPARE(ghostStep.lastPath(), StepPath::Dense);

    const torch::Tensor bad = x.clone();
    bad[3][5] = std::nan("");
    for (const StepPath path : {StepPath::Sparse, StepPath::Chunked, StepPath::Auto}) {
      sparseStep.setPath(path);
      const auto nanOut = sparseStep.forward(bad, 1.0, {});
      QCOMPARE(sparseStep.lastPath(), StepPath::Dense);
      QVERIFY(std::isnan(nanOut.loss.item<double>()));
    }
    // Auto after dense batches, with a NaN: the chunked step stops at the NaN, autograd runs.
    denseStep.setPath(StepPath::Auto);
    const auto denseNan = denseStep.forward(bad, 1.0, {});
    QCOMPARE(denseStep.lastPath(), StepPath::Dense);
    QVERIFY(std::isnan(denseNan.loss.item<double>()));
  }

  // autocast (bf16 encoder product). Wiring: on inputs and W_enc already representable in bf16
  // the rounding is the identity, so the bf16 step must equal autograd in fp32 to 1e-5 (loss,
  // sae_out, every gradient). Effect: on ordinary fp32 inputs the sparse and chunked bf16 steps
  // agree with each other to 1e-5 (the same product), differ from the fp32 step (rounding did
  // happen) and stay within 2% of its loss; the autograd step runs under LibTorch's bf16
  // autocast, which also moves its loss.
  void bf16Encoder_data() {
    QTest::addColumn<int>("path");
    QTest::addColumn<double>("density");
    QTest::newRow("sparse, density 1%") << static_cast<int>(StepPath::Sparse) << 0.01;
    QTest::newRow("chunked, density 1%") << static_cast<int>(StepPath::Chunked) << 0.01;
    QTest::newRow("chunked, density 50%") << static_cast<int>(StepPath::Chunked) << 0.5;
  }

  void bf16Encoder() {
    if (!sae::Bf16Gemm::available())
      QSKIP(qPrintable("no bf16 matmul on this CPU: " +
                       QString::fromStdString(sae::Bf16Gemm::unavailableReason())));
    QFETCH(int, path);
    QFETCH(double, density);
    Setup setup;
    setup.options = baseOptions(/*applyBDec=*/false, /*scaleByNorm=*/true);
    setup.density = density;
    torch::manual_seed(11);
    const torch::Tensor x = torch::randn({128, setup.options.d_in});
    const double l1 = 0.8;

    // 1. Representable inputs: bf16 step == fp32 autograd.
    {
      const torch::Tensor xr = x.to(torch::kBFloat16).to(torch::kFloat32);
      auto dense = makeSae(setup, xr);
      {
        torch::NoGradGuard noGrad;
        dense->W_enc.copy_(dense->W_enc.to(torch::kBFloat16).to(torch::kFloat32));
      }
      auto bf16Sae = copyOf(*dense);
      const SaeForward d = dense->forward(xr, l1, {}, true);
      d.loss.backward();
      auto step = makeStep(*bf16Sae, static_cast<StepPath>(path));
      step->setBf16(true);
      const SaeForward s = step->forward(xr, l1, {});
      step->backward(s);
      QCOMPARE(step->lastPath(), static_cast<StepPath>(path));
      for (const auto& [name, pair] :
           {std::make_pair("loss", std::make_pair(s.loss, d.loss)),
            std::make_pair("sae_out", std::make_pair(s.sae_out, d.sae_out))}) {
        const auto message = compareScaled(name, pair.first, pair.second, kRelative);
        QVERIFY2(message.empty(), message.c_str());
      }
      const auto denseParams = dense->trainableParameters();
      const auto bf16Params = bf16Sae->trainableParameters();
      for (size_t i = 0; i < denseParams.size(); ++i) {
        const auto message = compareScaled(std::string("grad ") + kParamNames[i],
                                           bf16Params[i].grad(), denseParams[i].grad(), kRelative);
        QVERIFY2(message.empty(), message.c_str());
      }
    }

    // 2. Ordinary inputs: the bf16 steps agree with each other and differ from fp32.
    auto reference = makeSae(setup, x);
    auto fp32Sae = copyOf(*reference);
    auto sparseSae = copyOf(*reference);
    auto chunkedSae = copyOf(*reference);
    auto autogradSae = copyOf(*reference);
    auto fp32Step = makeStep(*fp32Sae, static_cast<StepPath>(path));
    const double fp32Loss = fp32Step->forward(x, l1, {}).loss.item<double>();
    auto chunkedStep = makeStep(*chunkedSae, StepPath::Chunked);
    chunkedStep->setBf16(true);
    const SaeForward c = chunkedStep->forward(x, l1, {});
    chunkedStep->backward(c);
    if (density < 0.2) {
      auto sparseStep = makeStep(*sparseSae, StepPath::Sparse);
      sparseStep->setBf16(true);
      const SaeForward s = sparseStep->forward(x, l1, {});
      sparseStep->backward(s);
      QVERIFY(sparseStep->lastWasSparse());
      auto message = compareScaled("bf16 loss sparse vs chunked", s.loss, c.loss, kRelative);
      QVERIFY2(message.empty(), message.c_str());
      const auto chunkedParams = chunkedSae->trainableParameters();
      const auto sparseParams = sparseSae->trainableParameters();
      for (size_t i = 0; i < chunkedParams.size(); ++i) {
        message = compareScaled(std::string("bf16 grad sparse vs chunked ") + kParamNames[i],
                                sparseParams[i].grad(), chunkedParams[i].grad(), kRelative);
        QVERIFY2(message.empty(), message.c_str());
      }
    }
    const double bf16Loss = c.loss.item<double>();
    const double relative = std::abs(bf16Loss - fp32Loss) / std::abs(fp32Loss);
    QVERIFY2(relative > 1e-6 && relative < 2e-2,
             qPrintable(QString("bf16 loss %1, fp32 loss %2").arg(bf16Loss).arg(fp32Loss)));

    auto autogradStep = makeStep(*autogradSae, StepPath::Dense);
    autogradStep->setBf16(true);
    const SaeForward a = autogradStep->forward(x, l1, {});
    QCOMPARE(autogradStep->lastPath(), StepPath::Dense);
    const double autocastLoss = a.loss.item<double>();
    const double autocastRelative = std::abs(autocastLoss - fp32Loss) / std::abs(fp32Loss);
    QVERIFY2(autocastRelative > 1e-6 && autocastRelative < 2e-2,
             qPrintable(QString("autocast loss %1, fp32 loss %2").arg(autocastLoss).arg(fp32Loss)));
    a.loss.backward();  // the backward runs outside autocast and gives fp32 gradients
    QCOMPARE(autogradSae->W_enc.grad().scalar_type(), torch::kFloat32);
    QVERIFY(!at::autocast::is_cpu_enabled());  // the guard restored the state
  }
};

QTEST_APPLESS_MAIN(TestSparseStep)
#include "tst_sparse_step.moc"
