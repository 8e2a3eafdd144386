// ActivationStore: SAELens 1.5 buffer sizes, refills, partial last batches, normalisation, and
// bit-for-bit agreement with tests/reference/store_reference.py (a plain-torch re-implementation
// that uses a real torch DataLoader) under torch.manual_seed(7).
#include <QtTest>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <thread>

#include "data/ActivationStore.h"
#include "data/CachedActivationSource.h"
#include "formats/Safetensors.h"

using sae::ActivationStore;
using sae::ActivationStoreOptions;

namespace {

const std::string kData = SAEWB_FIXTURES_DIR "/data/";

// Serves the rows of a tensor in order, like a model streaming activations; whether the store
// treats it as live (shuffle + normalise) or cached is a constructor argument.
class TensorSource : public sae::ActivationSource {
 public:
  TensorSource(torch::Tensor rows, bool shuffles) : rows_(std::move(rows)), shuffles_(shuffles) {}
  int64_t dIn() const override { return rows_.size(1); }
  torch::Tensor next(int64_t rows) override {
    if (position_ + rows > rows_.size(0)) throw std::runtime_error("test source ran out");
    torch::Tensor out = rows_.narrow(0, position_, rows).clone();
    position_ += rows;
    ++calls_;
    return out;
  }
  bool shufflesBuffers() const override { return shuffles_; }
  std::string describe() const override { return "test rows"; }
  sae::StreamState saveState() const override {
    return {{"position", torch::tensor({position_}, torch::kInt64)}};
  }
  void restoreState(const sae::StreamState& state) override {
    position_ = state.at("position").item<int64_t>();
  }
  int64_t position() const { return position_; }
  int calls() const { return calls_; }

 private:
  torch::Tensor rows_;
  bool shuffles_;
  int64_t position_ = 0;
  int calls_ = 0;
};

ActivationStoreOptions storeOptions(int64_t n, int64_t s, int64_t c, int64_t b, bool normalize) {
  ActivationStoreOptions o;
  o.n_batches_in_buffer = n;
  o.store_batch_size = s;
  o.context_size = c;
  o.train_batch_size = b;
  o.normalize_activations = normalize;
  return o;
}

torch::Tensor arangeRows(int64_t rows, int64_t dIn) {
  return torch::arange(rows * dIn, torch::kFloat32).reshape({rows, dIn});
}

torch::Tensor sortedRows(const torch::Tensor& t) {  // rows ordered by their first column
  return t.index_select(0, std::get<1>(t.select(1, 0).sort()));
}

std::map<std::string, torch::Tensor> loadExpected() {
  std::map<std::string, torch::Tensor> m;
  for (auto& [name, t] : sae::Safetensors::read(kData + "store_expected.safetensors"))
    m[name] = t;
  return m;
}

std::vector<int64_t> ints(const torch::Tensor& t) {
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

}  // namespace

class TestActivationStore : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  }

  // A store rebuilt from saveState() (plus torch's generator, which the trainer saves) serves the
  // same batches as the original from there on: mid loader pass, with normalisation.
  void savedStateServesTheSameBatches() {
    torch::manual_seed(3);
    const torch::Tensor rows = torch::randn({2000, 4});
    auto source = std::make_shared<TensorSource>(rows, true);
    ActivationStore store(source, storeOptions(4, 2, 5, 6, true));  // 20 rows: 4 batches a pass
    for (int i = 0; i < 7; ++i)
      store.nextBatch();
    const sae::StreamState state = store.saveState();
    const torch::Tensor generator = at::detail::getDefaultCPUGenerator().get_state();
    QVERIFY(state.count("source.position"));
    const int64_t savedPosition = source->position();

    std::vector<torch::Tensor> want;
    for (int i = 0; i < 15; ++i)
      want.push_back(store.nextBatch());

    torch::manual_seed(99);  // a fresh process draws differently until the state is restored
    auto freshSource = std::make_shared<TensorSource>(rows, true);
    ActivationStore fresh(freshSource, storeOptions(4, 2, 5, 6, true));
    fresh.restoreState(state);
    at::Generator g = at::detail::getDefaultCPUGenerator();
    g.set_state(generator);
    QCOMPARE(freshSource->position(), savedPosition);
    QCOMPARE(*fresh.estimatedNormScalingFactor(), *store.estimatedNormScalingFactor());
    for (int i = 0; i < 15; ++i)
      QVERIFY2(torch::equal(fresh.nextBatch(), want[size_t(i)]),
               qPrintable(QString("batch %1 after the restore differs").arg(i)));

    sae::StreamState broken = state;
    broken.erase("flags");
    ActivationStore other(std::make_shared<TensorSource>(rows, true),
                          storeOptions(4, 2, 5, 6, true));
    try {
      other.restoreState(broken);
      QFAIL("a state without flags was accepted");
    } catch (const std::runtime_error& e) {
      QVERIFY(std::string(e.what()).find("has no 'flags'") != std::string::npos);
    }
  }

  void getBufferRowCount() {
    torch::manual_seed(0);
    auto cached = std::make_shared<TensorSource>(arangeRows(200, 3), false);
    ActivationStore store(cached, storeOptions(4, 3, 5, 7, false));
    const torch::Tensor b = store.getBuffer(2);  // n * S * C rows
    QCOMPARE(b.sizes().vec(), (std::vector<int64_t>{30, 3}));
    QVERIFY(torch::equal(b, arangeRows(30, 3)));  // cached: in order, untouched
    QCOMPARE(store.getBuffer(1).size(0), int64_t{15});

    auto live = std::make_shared<TensorSource>(arangeRows(200, 3), true);
    ActivationStore liveStore(live, storeOptions(4, 3, 5, 7, false));
    const torch::Tensor shuffled = liveStore.getBuffer(2);
    QCOMPARE(shuffled.size(0), int64_t{30});
    QVERIFY(!torch::equal(shuffled, arangeRows(30, 3)));             // permuted
    QVERIFY(torch::equal(sortedRows(shuffled), arangeRows(30, 3)));  // same rows
    QVERIFY(!liveStore.estimatedNormScalingFactor().has_value());
  }

  void storageBufferIsLazyAndBuiltOnce() {
    auto source = std::make_shared<TensorSource>(arangeRows(500, 2), true);
    ActivationStore store(source, storeOptions(5, 2, 3, 4, false));  // N // 2 = 2 batches
    QCOMPARE(source->calls(), 0);
    QCOMPARE(store.storageBuffer().size(0), int64_t{2 * 2 * 3});
    QCOMPARE(store.storageBuffer().size(0), int64_t{12});
    QCOMPARE(source->calls(), 1);
    QCOMPARE(source->position(), int64_t{12});
  }

  // N=4, S=2, C=4: every refill draws 16 rows, mixes them with the 16 stored rows, keeps 16 and
  // serves 16 in batches of 5, 5, 5 and a partial 1.
  void refillSizesAndPartialLastBatch() {
    torch::manual_seed(3);
    auto source = std::make_shared<TensorSource>(arangeRows(1000, 4), false);
    ActivationStore store(source, storeOptions(4, 2, 4, 5, false));
    std::vector<int64_t> sizes;
    std::vector<int64_t> positions;
    torch::Tensor served = torch::empty({0, 4});
    for (int i = 0; i < 12; ++i) {
      const torch::Tensor batch = store.nextBatch();
      QCOMPARE(batch.size(1), int64_t{4});
      sizes.push_back(batch.size(0));
      positions.push_back(source->position());
      served = torch::cat({served, batch});
    }
    QCOMPARE(sizes, (std::vector<int64_t>{5, 5, 5, 1, 5, 5, 5, 1, 5, 5, 5, 1}));
    // First refill: the new buffer (16) and the lazily built storage (16); then 16 per refill.
    QCOMPARE(positions, (std::vector<int64_t>{32, 32, 32, 32, 48, 48, 48, 48, 64, 64, 64, 64}));
    QCOMPARE(store.storageBuffer().size(0), int64_t{16});
    QCOMPARE(source->calls(), 4);
    // Every served row plus the final storage is exactly the 64 rows drawn, none twice.
    QVERIFY(
        torch::equal(sortedRows(torch::cat({served, store.storageBuffer()})), arangeRows(64, 4)));
  }

  void trainBatchLargerThanLoader() {
    auto source = std::make_shared<TensorSource>(arangeRows(100, 2), true);
    ActivationStore store(source, storeOptions(2, 1, 3, 1000, false));  // 3 rows per loader
    QCOMPARE(store.nextBatch().size(0), int64_t{3});
    QCOMPARE(store.nextBatch().size(0), int64_t{3});
    QCOMPARE(source->position(), int64_t{9});
  }

  void normalisationFactor() {
    torch::manual_seed(5);
    const torch::Tensor rows = torch::randn({400, 16}) * 3 + 1;
    auto source = std::make_shared<TensorSource>(rows, true);
    ActivationStore store(source, storeOptions(4, 2, 10, 8, true));
    QVERIFY(!store.estimatedNormScalingFactor().has_value());
    const torch::Tensor first = store.getBuffer(2);  // rows 0..39, shuffled, then scaled
    QVERIFY(store.estimatedNormScalingFactor().has_value());
    const double factor = *store.estimatedNormScalingFactor();
    const double meanNorm =
        rows.narrow(0, 0, 40).to(torch::kFloat64).norm(2, {1}).mean().item<double>();
    QVERIFY2(std::abs(factor - std::sqrt(16.0) / meanNorm) < 1e-6 * factor,
             std::to_string(factor).c_str());
    // Scaled rows have mean norm sqrt(d_in).
    QVERIFY(std::abs(first.norm(2, {1}).mean().item<double>() - 4.0) < 1e-4);
    // Fixed from then on: later buffers use the same factor.
    const torch::Tensor second = store.getBuffer(2);
    QCOMPARE(*store.estimatedNormScalingFactor(), factor);
    QVERIFY(torch::allclose(sortedRows(second / factor), sortedRows(rows.narrow(0, 40, 40)), 1e-5,
                            1e-5));

    // Cached sources are never normalised, even when asked.
    auto cached = std::make_shared<TensorSource>(rows, false);
    ActivationStore cachedStore(cached, storeOptions(4, 2, 10, 8, true));
    QVERIFY(torch::equal(cachedStore.getBuffer(2), rows.narrow(0, 0, 40)));
    cachedStore.nextBatch();
    QVERIFY(!cachedStore.estimatedNormScalingFactor().has_value());
  }

  void errors() {
    auto source = std::make_shared<TensorSource>(arangeRows(10, 2), true);
    bool threw = false;
    try {
      ActivationStore store(source, storeOptions(1, 1, 1, 1, false));
    } catch (const std::runtime_error&) {
      threw = true;
    }
    QVERIFY(threw);
    // A source that runs out surfaces its own error through nextBatch.
    ActivationStore store(source, storeOptions(4, 2, 2, 4, false));  // 8 rows per buffer
    std::string message;
    try {
      store.nextBatch();
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    QCOMPARE(message, std::string("test source ran out"));
  }

  // Cached activations (fixtures/data/cached_small, [n, 1, 6] files of 37, 41, 29, 43 rows):
  // storage built first (as b_dec init does), then 12 batches; everything bit for bit.
  void matchesPythonReferenceCached() {
    const auto expected = loadExpected();
    auto source = std::make_shared<sae::CachedActivationSource>(kData + "cached_small", 6);
    ActivationStore store(source, storeOptions(4, 2, 4, 5, false));
    torch::manual_seed(7);
    QVERIFY(torch::equal(store.storageBuffer(), expected.at("cached_storage_initial")));
    std::vector<torch::Tensor> batches;
    std::vector<int64_t> sizes;
    for (int i = 0; i < 12; ++i) {
      batches.push_back(store.nextBatch());
      sizes.push_back(batches.back().size(0));
    }
    QCOMPARE(sizes, ints(expected.at("cached_batch_sizes")));
    QVERIFY(torch::equal(torch::cat(batches), expected.at("cached_batches")));
    QVERIFY(torch::equal(store.storageBuffer(), expected.at("cached_storage_final")));
    QCOMPARE(ints(expected.at("cached_source_rows_used"))[0], int64_t{64});
    // Same number of default-generator draws as Python (DataLoader seeds included).
    QVERIFY(torch::equal(torch::rand({4}), expected.at("cached_trailing_rand")));
  }

  // A live (shuffled, normalised) source over fixtures/data/live_source.safetensors; no explicit
  // storage access first, so the new buffer is drawn (and sets the factor) before the storage.
  void matchesPythonReferenceLive() {
    const auto expected = loadExpected();
    const torch::Tensor rows =
        sae::Safetensors::readTensor(kData + "live_source.safetensors", "activations");
    auto source = std::make_shared<TensorSource>(rows, true);
    ActivationStore store(source, storeOptions(6, 2, 8, 7, true));
    torch::manual_seed(7);
    std::vector<torch::Tensor> batches;
    std::vector<int64_t> sizes;
    for (int i = 0; i < 20; ++i) {
      batches.push_back(store.nextBatch());
      sizes.push_back(batches.back().size(0));
    }
    QCOMPARE(sizes, ints(expected.at("live_batch_sizes")));
    QCOMPARE(source->position(), ints(expected.at("live_source_rows_used"))[0]);
    QVERIFY(store.estimatedNormScalingFactor().has_value());
    const float factor = expected.at("live_scaling_factor").item<float>();
    QCOMPARE(*store.estimatedNormScalingFactor(), static_cast<double>(factor));
    const torch::Tensor got = torch::cat(batches);
    const torch::Tensor want = expected.at("live_batches");
    QCOMPARE(got.sizes().vec(), want.sizes().vec());
    const double maxDiff = (got - want).abs().max().item<double>();
    qInfo("live batches: max |C++ - Python| = %g (bit-identical: %s)", maxDiff,
          torch::equal(got, want) ? "yes" : "no");
    QVERIFY(maxDiff <= 1e-6);
    QVERIFY(
        (store.storageBuffer() - expected.at("live_storage_final")).abs().max().item<double>() <=
        1e-6);
    QVERIFY(torch::equal(torch::rand({4}), expected.at("live_trailing_rand")));
  }
};

QTEST_APPLESS_MAIN(TestActivationStore)
#include "tst_activation_store.moc"
