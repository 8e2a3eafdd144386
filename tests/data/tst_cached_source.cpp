// CachedActivationSource over SAELens's {folder}/N.safetensors layout: reading across file
// boundaries, layer selection, dtype conversion, and the errors a user sees for a wrong d_in, a
// bad folder or data that runs out.
#include <QTemporaryDir>
#include <QtTest>

#include <torch/torch.h>

#include <filesystem>
#include <thread>

#include "data/CachedActivationSource.h"
#include "formats/Safetensors.h"
#include "support/TestText.h"

using sae::CachedActivationSource;
using sae::Safetensors;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kCachedSmall = SAEWB_FIXTURES_DIR "/data/cached_small";

// The fixture's value at overall row r, column j (tests/reference/store_reference.py).
torch::Tensor expectedRows(int64_t first, int64_t count, int64_t dIn = 6) {
  return torch::arange(first, first + count, torch::kFloat32).unsqueeze(1) * 10 +
         torch::arange(dIn, torch::kFloat32);
}

}  // namespace

class TestCachedSource : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  // A fresh folder under the temporary dir holding `files` as 0.safetensors, 1.safetensors, ...
  std::string makeFolder(const std::string& name, const std::vector<torch::Tensor>& files) {
    const std::string folder = dir_.filePath(QString::fromStdString(name)).toStdString();
    std::filesystem::create_directories(folder);
    for (size_t i = 0; i < files.size(); ++i) {
      Safetensors::write(folder + "/" + std::to_string(i) + ".safetensors",
                         {{"activations", files[i]}});
    }
    return folder;
  }

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
    QVERIFY(dir_.isValid());
  }

  // Files of 37, 41, 29 and 43 rows ([n, 1, 6]); reads straddle every boundary.
  void readsAcrossFileBoundaries() {
    CachedActivationSource source(kCachedSmall, 6);
    QCOMPARE(source.totalRows(), int64_t{150});
    QCOMPARE(source.dIn(), int64_t{6});
    QVERIFY(!source.shufflesBuffers());
    const std::string description = source.describe();
    QVERIFY2(contains(description, kCachedSmall) && contains(description, "4 files") &&
                 contains(description, "150 rows"),
             description.c_str());

    int64_t first = 0;
    for (int64_t n : {30, 20, 0, 1, 27, 72}) {  // 30|7 in file 0, 50 crosses 37, ... ends at 150
      torch::Tensor rows = source.next(n);
      QCOMPARE(rows.scalar_type(), torch::kFloat32);
      QCOMPARE(rows.sizes().vec(), (std::vector<int64_t>{n, 6}));
      QVERIFY2(torch::equal(rows, expectedRows(first, n)), std::to_string(first).c_str());
      first += n;
    }
    QCOMPARE(first, int64_t{150});
    const std::string message = errorOf([&] { source.next(1); });
    QVERIFY2(contains(message, "cached activations in " + kCachedSmall + " ran out after 150 rows"),
             message.c_str());
    QVERIFY2(contains(message, "cache more activations or lower training_tokens"), message.c_str());
  }

  void oneReadSpanningAllFiles() {
    CachedActivationSource source(kCachedSmall, 6);
    QVERIFY(torch::equal(source.next(150), expectedRows(0, 150)));
  }

  void runOutMentionsTrainingTokens() {
    CachedActivationSource source(kCachedSmall, 6, 0, 1000);
    source.next(100);
    const std::string message = errorOf([&] { source.next(64); });
    QVERIFY2(contains(message, "ran out after 150 rows; the config asks for 1000 training tokens"),
             message.c_str());
  }

  void dInMismatchNamesFileAndShapes() {
    const std::string message = errorOf([] { CachedActivationSource(kCachedSmall, 5); });
    QVERIFY2(contains(message, kCachedSmall + "/0.safetensors"), message.c_str());
    QVERIFY2(contains(message, "[37, 1, 6]"), message.c_str());
    QVERIFY2(contains(message, "[n, 5]") && contains(message, "d_in 5"), message.c_str());

    // A later file with the wrong width is caught at construction, naming that file.
    const std::string folder =
        makeFolder("mixed", {torch::zeros({4, 8}), torch::zeros({4, 8}), torch::zeros({4, 7})});
    const std::string later = errorOf([&] { CachedActivationSource(folder, 8); });
    QVERIFY2(contains(later, folder + "/2.safetensors") && contains(later, "[4, 7]"),
             later.c_str());
  }

  void selectsLayerOfMultiLayerFiles() {
    torch::manual_seed(1);
    const torch::Tensor a = torch::randn({5, 3, 4}), b = torch::randn({6, 3, 4});
    const std::string folder = makeFolder("layers", {a, b});
    for (int64_t layer = 0; layer < 3; ++layer) {
      CachedActivationSource source(folder, 4, layer);
      QCOMPARE(source.totalRows(), int64_t{11});
      const torch::Tensor rows = source.next(11);
      QVERIFY(rows.is_contiguous());
      QVERIFY(torch::equal(rows, torch::cat({a.select(1, layer), b.select(1, layer)})));
    }
    const std::string message = errorOf([&] { CachedActivationSource(folder, 4, 3); });
    QVERIFY2(contains(message, "[5, 3, 4]") && contains(message, "layer index 3"), message.c_str());
    // A layer index needs the [n, n_layers, d_in] layout.
    const std::string flat = makeFolder("flat", {torch::zeros({3, 4})});
    QVERIFY(contains(errorOf([&] { CachedActivationSource(flat, 4, 1); }), "[3, 4]"));
  }

  void convertsOtherDtypesToFloat32() {
    torch::manual_seed(2);
    const torch::Tensor half = torch::randn({3, 4}).to(torch::kFloat16);
    const torch::Tensor bf = torch::randn({2, 4}).to(torch::kBFloat16);
    const torch::Tensor dbl = torch::randn({2, 4}, torch::kFloat64);
    CachedActivationSource source(makeFolder("dtypes", {half, bf, dbl}), 4);
    const torch::Tensor rows = source.next(7);
    QCOMPARE(rows.scalar_type(), torch::kFloat32);
    QVERIFY(torch::equal(rows, torch::cat({half.to(torch::kFloat32), bf.to(torch::kFloat32),
                                           dbl.to(torch::kFloat32)})));
  }

  void folderErrors() {
    const std::string missing = dir_.filePath("nope").toStdString();
    QVERIFY(contains(errorOf([&] { CachedActivationSource(missing, 4); }), "does not exist"));
    const std::string empty = makeFolder("empty", {});
    QVERIFY(contains(errorOf([&] { CachedActivationSource(empty, 4); }), "no 0.safetensors"));
    // Numbering must start at 0 and run without gaps: 1.safetensors alone is not a cache.
    const std::string gap = makeFolder("gap", {});
    Safetensors::write(gap + "/1.safetensors", {{"activations", torch::zeros({2, 4})}});
    QVERIFY(contains(errorOf([&] { CachedActivationSource(gap, 4); }), "no 0.safetensors"));

    const std::string wrongKey = makeFolder("wrongkey", {});
    Safetensors::write(wrongKey + "/0.safetensors", {{"acts", torch::zeros({2, 4})}});
    const std::string message = errorOf([&] { CachedActivationSource(wrongKey, 4); });
    QVERIFY2(contains(message, wrongKey + "/0.safetensors") && contains(message, "activations"),
             message.c_str());

    const std::string corrupt = makeFolder("corrupt", {torch::zeros({2, 4})});
    std::filesystem::resize_file(corrupt + "/0.safetensors", 20);
    QVERIFY(
        contains(errorOf([&] { CachedActivationSource(corrupt, 4); }), corrupt + "/0.safetensors"));
  }

  // Files are read lazily, one at a time: a file damaged after start-up fails when reached.
  void fileChangedAfterStartFailsWhenReached() {
    const std::string folder = makeFolder("changed", {torch::ones({3, 4}), torch::ones({3, 4})});
    CachedActivationSource source(folder, 4);
    Safetensors::write(folder + "/1.safetensors", {{"activations", torch::ones({2, 4})}});
    QVERIFY(torch::equal(source.next(3), torch::ones({3, 4})));
    QVERIFY(contains(errorOf([&] { source.next(1); }), folder + "/1.safetensors"));
  }
};

QTEST_APPLESS_MAIN(TestCachedSource)
#include "tst_cached_source.moc"
