// HookedTransformer against tests/reference/model_reference.py (an independent einsum
// implementation of TransformerLens's forward): every hook's value and shape, logits and loss
// for each supported act_fn / normalization / attn_only, weights read from torch.save .pth
// (Neel-style, with mask/IGNORE buffers and no unembed.b_U) and from safetensors; CE with
// blocks.0.hook_mlp_out zero-ablated and with an SAE spliced in; stop_at_layer; gradients;
// clear errors for bad configs, weights and inputs; model_name resolution in a fake hub cache.
#include <QTemporaryDir>
#include <QtTest>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "config/ConfigError.h"
#include "formats/Safetensors.h"
#include "model/HookedTransformer.h"
#include "model/ModelLoader.h"
#include "support/TestText.h"

using sae::HookedRunOptions;
using sae::HookedTransformer;
using sae::ModelLoader;
using saetest::contains;
using saetest::errorOf;
namespace fs = std::filesystem;

namespace {

const std::string kModels = SAEWB_FIXTURES_DIR "/model/";
// float32 model vs float32 einsum reference: summation order differs only.
constexpr double kAtol = 1e-5, kRtol = 1e-5;

std::map<std::string, torch::Tensor> goldens(const std::string& name) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [key, t] : sae::Safetensors::read(kModels + name + ".golden.safetensors"))
    out[key] = t;
  return out;
}

// Element-wise closeness that also accepts equal infinities (masked attention scores are -inf).
std::string compare(const std::string& what, const torch::Tensor& actual,
                    const torch::Tensor& expected) {
  if (actual.sizes() != expected.sizes()) {
    return what + ": shape " + c10::str(actual.sizes()) + " vs reference " +
           c10::str(expected.sizes());
  }
  const auto a = actual.detach().to(torch::kFloat64);
  const auto e = expected.to(torch::kFloat64);
  const auto sameInf = torch::isinf(e) & (a == e);
  const auto excess =
      torch::where(sameInf, torch::zeros_like(a), (a - e).abs() - (kAtol + kRtol * e.abs()));
  if (torch::isnan(excess).any().item<bool>()) return what + ": NaN or mismatched infinity";
  if (excess.max().item<double>() <= 0) return {};
  const auto worst = excess.flatten().argmax().item<int64_t>();
  return what + ": element " + std::to_string(worst) + " is " +
         std::to_string(a.flatten()[worst].item<double>()) + ", reference " +
         std::to_string(e.flatten()[worst].item<double>());
}

torch::Tensor spliceSae(const std::map<std::string, torch::Tensor>& g, const torch::Tensor& x) {
  const auto h =
      torch::relu(torch::matmul(x - g.at("sae.b_dec"), g.at("sae.W_enc")) + g.at("sae.b_enc"));
  return torch::matmul(h, g.at("sae.W_dec")) + g.at("sae.b_dec");
}

void writeText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

nlohmann::json smallConfig() {
  return {{"n_layers", 1}, {"d_model", 16},    {"n_heads", 2},
          {"d_head", 8},   {"d_mlp", 32},      {"d_vocab", 40},
          {"n_ctx", 12},   {"act_fn", "gelu"}, {"normalization_type", "LN"}};
}

}  // namespace

class TestHookedTransformer : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void everyHookLogitsAndLossMatchTheReference_data() {
    QTest::addColumn<QString>("name");
    for (const char* name : {"gelu_1l_pth", "gelu_1l_safetensors", "gelu_new_2l", "relu_lnpre_1l",
                             "solu_ln_1l", "gelu_nonorm_1l", "attn_only_2l"}) {
      QTest::newRow(name) << QString(name);
    }
  }
  void everyHookLogitsAndLossMatchTheReference() {
    QFETCH(QString, name);
    const auto g = goldens(name.toStdString());
    const auto model = ModelLoader::loadFolder(kModels + name.toStdString());
    const auto tokens = g.at("tokens");
    HookedRunOptions options;
    options.cacheAll = true;
    const auto result = model.run(tokens, options);
    // Exactly TransformerLens's hook points, each with the reference's value and shape.
    std::set<std::string> referenceHooks;
    for (const auto& [key, t] : g) {
      if (key.find("hook_") != std::string::npos) referenceHooks.insert(key);
    }
    const auto names = model.hookNames();
    QCOMPARE(std::set<std::string>(names.begin(), names.end()), referenceHooks);
    QCOMPARE(result.cache.size(), referenceHooks.size());
    for (const auto& hook : referenceHooks) {
      const auto message = compare(hook, result.cache.at(hook), g.at(hook));
      QVERIFY2(message.empty(), message.c_str());
    }
    auto message = compare("logits", result.output, g.at("logits"));
    QVERIFY2(message.empty(), message.c_str());
    const double loss = model.loss(tokens).item<double>();
    QVERIFY2(std::fabs(loss - g.at("loss").item<double>()) < 1e-5, std::to_string(loss).c_str());
    QVERIFY(std::fabs(HookedTransformer::crossEntropyLoss(result.output, tokens).item<double>() -
                      loss) < 1e-5);
  }

  void zeroAblationAndSaeSpliceMatchTheReference_data() {
    QTest::addColumn<QString>("name");
    for (const char* name : {"gelu_1l_pth", "gelu_1l_safetensors", "gelu_new_2l", "solu_ln_1l"}) {
      QTest::newRow(name) << QString(name);
    }
  }
  void zeroAblationAndSaeSpliceMatchTheReference() {
    QFETCH(QString, name);
    const auto g = goldens(name.toStdString());
    const auto model = ModelLoader::loadFolder(kModels + name.toStdString());
    const auto tokens = g.at("tokens");
    const auto zero = model.loss(
        tokens, {{"blocks.0.hook_mlp_out", [](const torch::Tensor& x, const std::string&) {
                    return torch::zeros_like(x);
                  }}});
    const auto splice = model.loss(
        tokens, {{"blocks.0.hook_mlp_out",
                  [&](const torch::Tensor& x, const std::string&) { return spliceSae(g, x); }}});
    QVERIFY2(std::fabs(zero.item<double>() - g.at("loss_zero_ablation").item<double>()) < 1e-5,
             std::to_string(zero.item<double>()).c_str());
    QVERIFY2(std::fabs(splice.item<double>() - g.at("loss_splice").item<double>()) < 1e-5,
             std::to_string(splice.item<double>()).c_str());
    // The three losses differ, so the replacements really took effect.
    const double clean = model.loss(tokens).item<double>();
    QVERIFY(std::fabs(zero.item<double>() - clean) > 1e-3);
    QVERIFY(std::fabs(splice.item<double>() - clean) > 1e-3);
  }

  void stopAtLayerRunsOnlyThatFar() {
    const auto g = goldens("gelu_new_2l");
    const auto model = ModelLoader::loadFolder(kModels + "gelu_new_2l");
    QCOMPARE(model.stopAtLayerFor("blocks.0.hook_mlp_out"), int64_t(1));
    QCOMPARE(model.stopAtLayerFor("blocks.1.attn.hook_z"), int64_t(2));
    QCOMPARE(model.stopAtLayerFor("hook_embed"), int64_t(0));
    QCOMPARE(model.stopAtLayerFor("ln_final.hook_scale"), int64_t(-1));
    HookedRunOptions options;
    options.stopAtLayer = 1;
    options.cacheNames = {"blocks.0.hook_mlp_out"};
    const auto result = model.run(g.at("tokens"), options);
    auto message = compare("residual", result.output, g.at("blocks.0.hook_resid_post"));
    QVERIFY2(message.empty(), message.c_str());
    QCOMPARE(result.cache.size(), size_t(1));
    const auto cache = model.runWithCache(g.at("tokens"), {"blocks.1.mlp.hook_post", "hook_embed"});
    QCOMPARE(cache.size(), size_t(2));
    message = compare("post", cache.at("blocks.1.mlp.hook_post"), g.at("blocks.1.mlp.hook_post"));
    QVERIFY2(message.empty(), message.c_str());
    options.cacheNames = {"blocks.1.hook_mlp_out"};
    const auto notReached = errorOf([&] { model.run(g.at("tokens"), options); });
    QVERIFY2(contains(notReached, "blocks.1.hook_mlp_out") && contains(notReached, "not reached"),
             notReached.c_str());
    const auto unknown = errorOf([&] { model.stopAtLayerFor("blocks.0.hook_mlp_outt"); });
    QVERIFY2(contains(unknown, "unknown hook point 'blocks.0.hook_mlp_outt'") &&
                 contains(unknown, "blocks.0.hook_mlp_out,"),
             unknown.c_str());
  }

  void neelCheckpointBuffersAreHandled() {
    // The .pth carries attn.mask / attn.IGNORE (-1e5) and no unembed.b_U.
    const auto tensors = ModelLoader::readWeights(kModels + "gelu_1l_pth/model_final.pth");
    std::set<std::string> keys;
    for (const auto& [k, t] : tensors)
      keys.insert(k);
    QVERIFY(keys.count("blocks.0.attn.mask") && keys.count("blocks.0.attn.IGNORE"));
    QVERIFY(!keys.count("unembed.b_U"));
    auto model = ModelLoader::loadFolder(kModels + "gelu_1l_pth");
    const auto ignored = model.loadStateDict(tensors, "gelu_1l_pth");
    QCOMPARE(std::set<std::string>(ignored.begin(), ignored.end()),
             (std::set<std::string>{"blocks.0.attn.mask", "blocks.0.attn.IGNORE"}));
    for (const auto& [k, t] : model.stateDict()) {
      if (k == "unembed.b_U") QVERIFY(torch::equal(t, torch::zeros_like(t)));
    }
    const auto g = goldens("gelu_1l_pth");
    HookedRunOptions options;
    options.cacheNames = {"blocks.0.attn.hook_attn_scores"};
    const auto scores =
        model.run(g.at("tokens"), options).cache.at("blocks.0.attn.hook_attn_scores");
    QCOMPARE(scores[0][0][0][1].item<float>(), -1e5f);  // masked with the checkpoint's IGNORE
  }

  void forwardIsDifferentiable() {
    auto model = ModelLoader::loadFolder(kModels + "gelu_1l_safetensors");
    const auto tokens = goldens("gelu_1l_safetensors").at("tokens");
    model.setRequiresGrad(true);
    const auto loss = model.loss(tokens);
    loss.backward();
    torch::Tensor W_in;
    for (const auto& [name, p] : model.stateDict()) {
      QVERIFY2(p.grad().defined(), name.c_str());
      QVERIFY2(torch::isfinite(p.grad()).all().item<bool>(), name.c_str());
      if (name == "blocks.0.mlp.W_in") W_in = p;
    }
    // Central finite difference on one weight agrees with autograd.
    const double eps = 1e-2;
    const double analytic = W_in.grad()[3][5].item<double>();
    double plus, minus;
    {
      torch::NoGradGuard guard;
      W_in[3][5] += eps;
      plus = model.loss(tokens).item<double>();
      W_in[3][5] -= 2 * eps;
      minus = model.loss(tokens).item<double>();
      W_in[3][5] += eps;
    }
    const double numeric = (plus - minus) / (2 * eps);
    QVERIFY2(std::fabs(numeric - analytic) < 1e-3 + 0.02 * std::fabs(analytic),
             (std::to_string(numeric) + " vs " + std::to_string(analytic)).c_str());
  }

  void badWeightsNameTheKeyAndShapes() {
    QTemporaryDir dir;
    const fs::path folder = dir.path().toStdString();
    fs::copy_file(kModels + "gelu_1l_safetensors/config.json", folder / "config.json");
    auto tensors = ModelLoader::readWeights(kModels + "gelu_1l_safetensors/model.safetensors");
    auto without = tensors;
    without.erase(std::remove_if(without.begin(), without.end(),
                                 [](const auto& p) { return p.first == "blocks.0.mlp.W_in"; }),
                  without.end());
    sae::Safetensors::write((folder / "model.safetensors").string(), without);
    auto message = errorOf([&] { ModelLoader::loadFolder(folder.string()); });
    QVERIFY2(contains(message, "'blocks.0.mlp.W_in'") && contains(message, "missing") &&
                 contains(message, "model.safetensors"),
             message.c_str());
    auto reshaped = tensors;
    for (auto& [k, t] : reshaped) {
      if (k == "blocks.0.attn.W_Q") t = t.reshape({2, 8, 16});
    }
    sae::Safetensors::write((folder / "model.safetensors").string(), reshaped);
    message = errorOf([&] { ModelLoader::loadFolder(folder.string()); });
    QVERIFY2(contains(message, "'blocks.0.attn.W_Q'") && contains(message, "[2, 8, 16]") &&
                 contains(message, "[2, 16, 8]"),
             message.c_str());
    auto integer = tensors;
    for (auto& [k, t] : integer) {
      if (k == "embed.W_E") t = t.to(torch::kInt64);
    }
    sae::Safetensors::write((folder / "model.safetensors").string(), integer);
    message = errorOf([&] { ModelLoader::loadFolder(folder.string()); });
    QVERIFY2(contains(message, "'embed.W_E'") && contains(message, "Long"), message.c_str());
    fs::remove(folder / "model.safetensors");
    message = errorOf([&] { ModelLoader::loadFolder(folder.string()); });
    QVERIFY2(contains(message, "no weights file"), message.c_str());
  }

  void badConfigsAreRefusedWithTheKey() {
    auto check = [](nlohmann::json j, const std::string& expected) {
      const auto message = errorOf([&] { sae::TransformerConfig::fromJson(j, "cfg.json"); });
      QVERIFY2(contains(message, expected) && contains(message, "cfg.json"), message.c_str());
    };
    auto j = smallConfig();
    j["act_fn"] = "swish";
    check(j, "act_fn 'swish' is not supported");
    j = smallConfig();
    j["normalization_type"] = "RMS";
    check(j, "'normalization_type' is 'RMS'");
    j = smallConfig();
    j["positional_embedding_type"] = "rotary";
    check(j, "positional_embedding_type 'rotary'");
    j = smallConfig();
    j["shortformer_pos"] = true;
    check(j, "'shortformer_pos' is true");
    j = smallConfig();
    j.erase("n_layers");
    check(j, "'n_layers' is missing");
    j = smallConfig();
    j["d_model"] = "big";
    check(j, "'d_model' must be an integer");
    j = smallConfig();
    j["n_ctx"] = 0;
    check(j, "'n_ctx' must be positive");
    // Neel's key names map like TransformerLens's convert_neel_model_config.
    j = smallConfig();
    j.erase("normalization_type");
    j["normalization"] = nullptr;
    const auto c = sae::TransformerConfig::fromJson(j, "cfg.json");
    QVERIFY(c.normalization_type.empty());
    QCOMPARE(c.attn_scale, std::sqrt(8.0));
    QCOMPARE(c.d_vocab_out, int64_t(40));
  }

  void badInputsAndReplacementsGiveErrors() {
    const auto model = ModelLoader::loadFolder(kModels + "gelu_1l_safetensors");
    auto message = errorOf([&] { model.forward(torch::full({1, 4}, 40, torch::kInt64)); });
    QVERIFY2(contains(message, "token id 40") && contains(message, "d_vocab 40"), message.c_str());
    message = errorOf([&] { model.forward(torch::zeros({1, 13}, torch::kInt64)); });
    QVERIFY2(contains(message, "13 positions") && contains(message, "n_ctx"), message.c_str());
    message = errorOf([&] { model.forward(torch::zeros({1, 4}, torch::kInt32)); });
    QVERIFY2(contains(message, "int64"), message.c_str());
    message = errorOf([&] {
      model.loss(torch::zeros({1, 4}, torch::kInt64),
                 {{"blocks.0.hook_mlp_out",
                   [](const torch::Tensor& x, const std::string&) { return x.sum(-1); }}});
    });
    QVERIFY2(contains(message, "replacement for hook 'blocks.0.hook_mlp_out'") &&
                 contains(message, "[1, 4]"),
             message.c_str());
  }

  void savedFolderLoadsBackIdentically() {
    QTemporaryDir dir;
    const auto model = ModelLoader::loadFolder(kModels + "solu_ln_1l");
    const std::string folder = dir.filePath("saved").toStdString();
    ModelLoader::saveFolder(model, folder);
    const auto back = ModelLoader::loadFolder(folder);
    const auto tokens = goldens("solu_ln_1l").at("tokens");
    QVERIFY(torch::equal(back.forward(tokens), model.forward(tokens)));
  }

  void modelNamesResolveInTheHubCacheAndAppFolder() {
    QTemporaryDir dir;
    const fs::path root = dir.path().toStdString();
    const fs::path hub = root / "hub";
    const fs::path repo = hub / "models--NeelNanda--GELU_1L512W_C4_Code";
    writeText(repo / "refs" / "main", "abc123");
    fs::create_directories(repo / "snapshots" / "old999");
    fs::create_directories(repo / "snapshots" / "abc123");
    for (const char* f : {"config.json", "model_final.pth"}) {
      fs::copy_file(kModels + "gelu_1l_pth/" + f, repo / "snapshots" / "abc123" / f);
    }
    const fs::path app = root / "app-models";
    fs::create_directories(app / "my-model");
    fs::copy_file(kModels + "relu_lnpre_1l/config.json", app / "my-model" / "config.json");
    const std::vector<std::string> hubs = {(root / "empty-hub").string(), hub.string()};
    const std::string snapshot = (repo / "snapshots" / "abc123").string();
    QCOMPARE(ModelLoader::resolveFolderIn("gelu-1l", app.string(), hubs), snapshot);
    QCOMPARE(ModelLoader::resolveFolderIn("GELU-1L-c4-code", app.string(), hubs), snapshot);
    QCOMPARE(ModelLoader::resolveFolderIn("NeelNanda/GELU_1L512W_C4_Code", app.string(), hubs),
             snapshot);
    QCOMPARE(ModelLoader::resolveFolderIn("my-model", app.string(), hubs),
             (app / "my-model").string());
    QCOMPARE(ModelLoader::resolveFolderIn(kModels + "gelu_new_2l", app.string(), hubs),
             kModels + "gelu_new_2l");
    QCOMPARE(ModelLoader::repoIdFor("attn-only-1l"),
             std::string("NeelNanda/Attn_Only_1L512W_C4_Code"));
    QCOMPARE(ModelLoader::repoIdFor("solu-2l"), std::string("NeelNanda/SoLU_2L512W_C4_Code"));

    auto message = errorOf([&] { ModelLoader::resolveFolderIn("gelu-2l", app.string(), hubs); });
    QVERIFY2(
        contains(message, "huggingface-cli download NeelNanda/GELU_2L512W_C4_Code") &&
            contains(message,
                     (root / "empty-hub" / "models--NeelNanda--GELU_2L512W_C4_Code").string()) &&
            contains(message, (app / "gelu-2l").string()) && contains(message, "(does not exist)"),
        message.c_str());
    message = errorOf([&] { ModelLoader::resolveFolderIn("gpt-17", app.string(), hubs); });
    QVERIFY2(contains(message, "'gpt-17'") && contains(message, "gelu-1l"), message.c_str());

    // Through the environment, as sae-train resolves it: HF_HUB_CACHE and XDG_CACHE_HOME.
    qputenv("HF_HUB_CACHE", QByteArray::fromStdString(hub.string()));
    qputenv("XDG_CACHE_HOME", QByteArray::fromStdString((root / "xdg").string()));
    QCOMPARE(ModelLoader::resolveFolder("gelu-1l"), snapshot);
    QCOMPARE(ModelLoader::appModelsFolder(), (root / "xdg" / "sae-workbench" / "models").string());
    const auto loaded = ModelLoader::load("gelu-1l");
    const auto g = goldens("gelu_1l_pth");
    QVERIFY(std::fabs(loaded.loss(g.at("tokens")).item<double>() - g.at("loss").item<double>()) <
            1e-5);
  }
};

QTEST_APPLESS_MAIN(TestHookedTransformer)
#include "tst_hooked_transformer.moc"
