// SaeOptions::fromConfig, loadTensors / namedTensors and the decoder helpers of Sae.
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include <torch/torch.h>
#include <QtTest>

#include "config/RunConfig.h"
#include "sae/Sae.h"

using sae::RunConfig;
using sae::Sae;
using sae::SaeOptions;

namespace {

SaeOptions smallOptions() {
  SaeOptions options;
  options.d_in = 16;
  options.d_sae = 64;
  return options;
}

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

}  // namespace

class TestSaeHelpers : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  }

  void fromConfigCopiesFields() {
    RunConfig config;
    config.d_in = 32;
    config.expansion_factor = 8;
    config.activation_fn = "tanh-relu";
    config.apply_b_dec_to_input = false;
    config.noise_scale = 0.5;
    config.lp_norm = 2.0;
    config.scale_sparsity_penalty_by_decoder_norm = true;
    config.mse_loss_normalization = "dense_batch";
    config.use_ghost_grads = true;
    config.normalize_sae_decoder = false;
    config.decoder_heuristic_init = true;
    config.init_encoder_as_decoder_transpose = true;
    config.dtype = "torch.float64";
    const auto o = SaeOptions::fromConfig(config);
    QCOMPARE(o.d_in, int64_t(32));
    QCOMPARE(o.d_sae, int64_t(256));
    QCOMPARE(o.activation_fn, std::string("tanh-relu"));
    QVERIFY(!o.apply_b_dec_to_input);
    QCOMPARE(o.noise_scale, 0.5);
    QCOMPARE(o.lp_norm, 2.0);
    QVERIFY(o.scale_sparsity_penalty_by_decoder_norm);
    QCOMPARE(o.mse_loss_normalization, std::string("dense_batch"));
    QVERIFY(o.use_ghost_grads);
    QVERIFY(!o.normalize_sae_decoder);
    QVERIFY(o.decoder_heuristic_init);
    QVERIFY(!o.decoder_orthogonal_init);
    QVERIFY(o.init_encoder_as_decoder_transpose);
    QCOMPARE(o.dtype, torch::kFloat64);
    QVERIFY(o.device == torch::Device(torch::kCPU));
    config.mse_loss_normalization.reset();
    QCOMPARE(SaeOptions::fromConfig(config).mse_loss_normalization, std::string());
  }

  void fromConfigDtypes() {
    RunConfig config;
    const std::pair<const char*, torch::Dtype> cases[] = {
        {"float32", torch::kFloat32},   {"torch.float32", torch::kFloat32},
        {"float64", torch::kFloat64},   {"torch.float64", torch::kFloat64},
        {"bfloat16", torch::kBFloat16}, {"torch.bfloat16", torch::kBFloat16},
        {"float16", torch::kFloat16},   {"torch.float16", torch::kFloat16}};
    for (const auto& [text, dtype] : cases) {
      config.dtype = text;
      QCOMPARE(SaeOptions::fromConfig(config).dtype, dtype);
    }
    config.dtype = "int8";
    QVERIFY(errorOf([&] { SaeOptions::fromConfig(config); }).find("int8") != std::string::npos);
  }

  void fromConfigDevices() {
    RunConfig config;
    config.device = "cpu";
    QVERIFY(SaeOptions::fromConfig(config).device.is_cpu());
    if (!torch::cuda::is_available()) {
      for (const char* device : {"cuda", "cuda:1"}) {
        config.device = device;
        QCOMPARE(errorOf([&] { SaeOptions::fromConfig(config); }),
                 "device '" + std::string(device) +
                     "' is not available in this LibTorch build (CPU only); set device to cpu or "
                     "build against a CUDA LibTorch with -DTorch_DIR=...");
      }
    }
    if (!at::hasMPS()) {
      config.device = "mps";
      QVERIFY(errorOf([&] { SaeOptions::fromConfig(config); }).find("'mps' is not available") !=
              std::string::npos);
    }
    config.device = "tpu";
    QVERIFY(errorOf([&] { SaeOptions::fromConfig(config); }).find("unknown device 'tpu'") !=
            std::string::npos);
  }

  void unknownActivationThrows() {
    auto options = smallOptions();
    options.activation_fn = "gelu";
    QVERIFY(errorOf([&] { Sae sae(options); }).find("gelu") != std::string::npos);
  }

  void namedTensorsOrderAndRoundTrip() {
    torch::manual_seed(1);
    Sae a(smallOptions());
    torch::manual_seed(2);
    Sae b(smallOptions());
    const auto named = a.namedTensors();
    QCOMPARE(named.size(), size_t(5));
    const char* order[] = {"W_enc", "b_enc", "W_dec", "b_dec", "scaling_factor"};
    for (size_t i = 0; i < 5; ++i)
      QCOMPARE(named[i].first, std::string(order[i]));
    const auto W_encBefore = b.W_enc;
    b.loadTensors(named, "a");
    QVERIFY(b.W_enc.is_same(W_encBefore));  // copied in place: the optimiser's tensors stay valid
    for (size_t i = 0; i < 5; ++i)
      QVERIFY(torch::equal(b.namedTensors()[i].second, named[i].second));
    QVERIFY(b.W_enc.requires_grad());
    const auto params = b.trainableParameters();
    QCOMPARE(params.size(), size_t(4));
    QVERIFY(params[0].is_same(b.W_enc) && params[1].is_same(b.b_enc) &&
            params[2].is_same(b.W_dec) && params[3].is_same(b.b_dec));
  }

  void loadTensorsErrors() {
    Sae sae(smallOptions());
    auto tensors = sae.namedTensors();
    tensors[2].second = torch::zeros({64, 8});
    const auto shapeError = errorOf([&] { sae.loadTensors(tensors, "x.safetensors"); });
    QCOMPARE(shapeError, std::string("x.safetensors: tensor 'W_dec' has shape [64, 8], the SAE "
                                     "expects [64, 16]"));
    tensors = sae.namedTensors();
    tensors.emplace_back("W_gate", torch::zeros({1}));
    QVERIFY(errorOf([&] { sae.loadTensors(tensors, "x"); }).find("unexpected tensor 'W_gate'") !=
            std::string::npos);
    tensors = sae.namedTensors();
    tensors.erase(tensors.begin() + 1);
    QVERIFY(errorOf([&] { sae.loadTensors(tensors, "x"); }).find("missing tensor 'b_enc'") !=
            std::string::npos);
  }

  // Old saves without scaling_factor load with ones, as SAELens fills them.
  void missingScalingFactorIsOnes() {
    Sae sae(smallOptions());
    {
      torch::NoGradGuard noGrad;
      sae.scaling_factor.fill_(3.0);
    }
    auto tensors = sae.namedTensors();
    tensors.pop_back();
    sae.loadTensors(tensors, "old");
    QVERIFY(torch::equal(sae.scaling_factor, torch::ones({64})));
  }

  void setDecoderNormToUnitNorm() {
    auto options = smallOptions();
    options.normalize_sae_decoder = false;
    Sae sae(options);
    QVERIFY((sae.W_dec.detach().norm(2, {1}) - 1).abs().max().item<double>() > 0.1);
    sae.setDecoderNormToUnitNorm();
    QVERIFY((sae.W_dec.detach().norm(2, {1}) - 1).abs().max().item<double>() < 1e-6);
    QVERIFY(sae.W_dec.is_leaf() && sae.W_dec.requires_grad());
  }

  // grad_i -= (grad_i . W_i) W_i: for unit rows the result is orthogonal to each row, and the
  // perpendicular part of the gradient is unchanged.
  void removeGradientParallelToDecoderDirections() {
    Sae sae(smallOptions());
    torch::manual_seed(5);
    const auto grad = torch::randn({64, 16});
    sae.W_dec.mutable_grad() = grad.clone();
    sae.removeGradientParallelToDecoderDirections();
    const auto w = sae.W_dec.detach();
    const auto g = sae.W_dec.grad();
    QVERIFY((g * w).sum(1).abs().max().item<double>() < 1e-5);
    const auto expected = grad - (grad * w).sum(1, true) * w;
    QVERIFY((g - expected).abs().max().item<double>() < 1e-5);
    Sae fresh(smallOptions());
    QVERIFY(!errorOf([&] { fresh.removeGradientParallelToDecoderDirections(); }).empty());
  }
};

QTEST_APPLESS_MAIN(TestSaeHelpers)
#include "tst_sae_helpers.moc"
