// Data-parallel training on c10d (issue 5 §5): two processes on loopback, each training on its
// half of every batch, end with the same SAE, Adam moments and firing counters as one process
// trained on the combined batches; `sae-train` runs two ranks from torchrun's variables with
// only rank 0 writing a run folder; a rank that fails ends the other with its message; bad
// variables and a missing peer give errors that say what to do.
//
// This executable is also the ranks' worker: `tst_distributed --worker <dir>` (see main()).
#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QtTest>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "config/ConfigError.h"
#include "config/RunConfig.h"
#include "data/ActivationSourceFactory.h"
#include "data/ActivationStore.h"
#include "data/CachedActivationSource.h"
#include "data/ShardedTokenSource.h"
#include "data/SyntheticActivationSource.h"
#include "formats/Safetensors.h"
#include "support/TensorCompare.h"
#include "train/DistributedContext.h"
#include "train/TorchSettings.h"
#include "train/Trainer.h"

namespace fs = std::filesystem;

namespace {

constexpr int kSteps = 8;
constexpr int64_t kRowsPerRank = 32;
constexpr int kWorld = 2;
// The ranks reduce in float32 in another order than one process sums its rows.
constexpr double kRtol = 1e-5, kAtol = 1e-6;

const QString kTrainer = QStringLiteral(SAEWB_BINARY_DIR "/app/sae-train");

// A port nobody listens on now: the kernel picks one for a socket bound to port 0. (Another
// process could take it before the ranks do; parallel ctest runs each get their own.)
int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    port = ntohs(address.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

// Dead-feature machinery on (a window of one step, ghost grads), b_dec from the storage buffer
// (each rank's differs: the broadcast must make it rank 0's), a sparsity window that resets.
sae::RunConfig tinyConfig() {
  sae::RunConfig c;
  c.model_name = "";
  c.dataset_path = "";
  c.use_synthetic_activations = true;
  c.synthetic_n_features = 24;
  c.synthetic_feature_probability = 0.05;
  c.synthetic_noise_std = 0.01;
  c.d_in = 16;
  c.expansion_factor = 2;
  c.context_size = 16;
  c.store_batch_size = 2;
  c.n_batches_in_buffer = 4;
  c.train_batch_size = kWorld * kRowsPerRank;  // the global batch
  c.training_tokens = c.train_batch_size * 100;
  c.l1_coefficient = 2.0;
  c.l1_warm_up_steps = 0;
  c.lr = 1e-2;
  c.lr_warm_up_steps = 2;
  c.lr_decay_steps = 0;
  c.normalize_sae_decoder = true;
  c.b_dec_init_method = "mean";
  c.use_ghost_grads = true;
  c.feature_sampling_window = 3;
  c.dead_feature_window = 1;
  c.wandb_log_frequency = 1;
  c.n_checkpoints = 0;
  c.num_threads = 1;
  c.seed = 7;
  return c;
}

// Sparse rows (a few true features each) so that latents fire on one rank's half and not the
// other's: the counters are only right when they are reduced.
torch::Tensor makeBatches(const sae::RunConfig& config) {
  sae::SyntheticOptions options;
  options.d_in = config.d_in;
  options.n_features = 24;
  options.feature_probability = 0.04;
  options.noise_std = 0.0;
  options.seed = 11;
  sae::SyntheticActivationSource source(options);
  return source.next(kSteps * kWorld * kRowsPerRank)
      .reshape({kSteps, kWorld * kRowsPerRank, config.d_in});
}

using Metrics = std::vector<std::map<std::string, double>>;

// Builds the trainer a rank (or the one-process reference) uses: torch seeded with `seed`
// before the SAE is made, the config's synthetic stream (shard 0 is the whole stream's).
struct Setup {
  std::shared_ptr<sae::ActivationStore> store;
  std::unique_ptr<sae::Trainer> trainer;
};

Setup makeTrainer(const sae::RunConfig& config, uint64_t seed, const sae::DataShard& shard) {
  sae::TorchSettings::setThreads(1);
  sae::TorchSettings::seed(seed);
  Setup s;
  auto options = sae::ActivationStoreOptions::fromConfig(config);
  options.train_batch_size = config.train_batch_size / shard.count;
  s.store = std::make_shared<sae::ActivationStore>(
      sae::ActivationSourceFactory::create(config, {}, shard), options);
  s.trainer = std::make_unique<sae::Trainer>(config, s.store, sae::Trainer::makeSae(config), "");
  return s;
}

std::map<std::string, torch::Tensor> readState(const std::string& path) {
  const auto tensors = sae::Safetensors::read(path);
  return {tensors.begin(), tensors.end()};
}

void writeMetrics(const std::string& path, const Metrics& metrics) {
  std::ofstream(path) << nlohmann::json(metrics).dump();
}

Metrics readMetrics(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in).get<Metrics>();
}

// The rank's side: argv = --worker <dir> [fail]. The environment holds MASTER_ADDR, MASTER_PORT,
// RANK and WORLD_SIZE. With "fail", rank 1 stops after two steps with a note, as a rank whose
// step throws does (TrainingRun::run reports the error, the process ends).
int workerMain(const std::string& dir, bool fail) {
  try {
    const auto context = sae::DistributedContext::fromEnvironment();
    if (!context) throw std::runtime_error("worker started without WORLD_SIZE > 1");
    const int rank = context->rank();
    const sae::RunConfig config = sae::RunConfig::loadFile(dir + "/config.json");
    const torch::Tensor batches = sae::Safetensors::readTensor(dir + "/batches.safetensors", "x");
    // Every rank starts from a different SAE: the broadcast must make them all rank 0's.
    Setup s = makeTrainer(config, 1000 + static_cast<uint64_t>(rank), context->shard());
    s.trainer->setDistributed(context);
    Metrics metrics;
    for (int step = 0; step < kSteps; ++step) {
      if (fail && rank == 1 && step == 2) {
        context->reportFailure("simulated failure before step 2");
        std::fprintf(stderr, "rank 1 stops\n");
        return 3;
      }
      const torch::Tensor x = batches[step].narrow(0, rank * kRowsPerRank, kRowsPerRank);
      metrics.push_back(s.trainer->trainStepOn(x).values);
    }
    s.trainer->saveTrainingState(dir + "/state_rank" + std::to_string(rank) + ".safetensors");
    writeMetrics(dir + "/metrics_rank" + std::to_string(rank) + ".json", metrics);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "worker: %s\n", e.what());
    return 4;
  }
}

struct Rank {
  int exitCode;
  QString out, err;
};

// Starts one process per rank with torchrun's variables and waits for all of them.
std::vector<Rank> runRanks(const QString& program, const std::vector<QStringList>& arguments,
                           int timeoutMs, const std::map<QString, QString>& extraEnv = {}) {
  const int port = freePort();
  std::vector<std::unique_ptr<QProcess>> processes;
  for (size_t r = 0; r < arguments.size(); ++r) {
    auto process = std::make_unique<QProcess>();
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("MASTER_ADDR", "127.0.0.1");
    env.insert("MASTER_PORT", QString::number(port));
    env.insert("RANK", QString::number(r));
    env.insert("WORLD_SIZE", QString::number(arguments.size()));
    env.insert("SAEWB_DIST_TIMEOUT", "20");
    for (const auto& [key, value] : extraEnv)
      env.insert(key, value);
    process->setProcessEnvironment(env);
    process->start(program, arguments[r]);
    processes.push_back(std::move(process));
  }
  std::vector<Rank> ranks;
  for (auto& process : processes) {
    Rank rank{-1, {}, {}};
    if (process->waitForFinished(timeoutMs)) {
      rank.exitCode = process->exitStatus() == QProcess::NormalExit ? process->exitCode() : -2;
    } else {
      process->kill();
      process->waitForFinished();
    }
    rank.out = QString::fromUtf8(process->readAllStandardOutput());
    rank.err = QString::fromUtf8(process->readAllStandardError());
    ranks.push_back(rank);
  }
  return ranks;
}

QString describe(const std::vector<Rank>& ranks) {
  QString s;
  for (size_t r = 0; r < ranks.size(); ++r)
    s += QString("rank %1 exit %2\nstdout: %3\nstderr: %4\n")
             .arg(r)
             .arg(ranks[r].exitCode)
             .arg(ranks[r].out.right(1500), ranks[r].err.right(1500));
  return s;
}

class EnvGuard {
 public:
  explicit EnvGuard(std::map<QByteArray, QByteArray> values) {
    for (const char* name :
         {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "SAEWB_DIST_TIMEOUT"})
      qunsetenv(name);
    for (const auto& [name, value] : values)
      qputenv(name.constData(), value);
  }
  ~EnvGuard() {
    for (const char* name :
         {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "SAEWB_DIST_TIMEOUT"})
      qunsetenv(name);
  }
};

// Rows 0, 1, 2, ... of `context` tokens each (token t of row r is r * 100 + t); records calls.
class CountingTokens : public sae::TokenSource {
 public:
  int64_t contextSize() const override { return 3; }
  std::vector<int64_t> nextRows(int64_t rows) override {
    std::vector<int64_t> out;
    for (int64_t r = 0; r < rows; ++r, ++row_)
      for (int64_t t = 0; t < 3; ++t)
        out.push_back(row_ * 100 + t);
    calls_.push_back({rows, 1});
    return out;
  }
  std::string describe() const override { return "counting rows"; }
  std::vector<std::pair<int64_t, int64_t>> callHistory() const override { return calls_; }
  void replayCalls(const std::vector<std::pair<int64_t, int64_t>>& history) override {
    for (const auto& [rows, calls] : history)
      for (int64_t i = 0; i < calls; ++i)
        nextRows(rows);
  }

 private:
  int64_t row_ = 0;
  std::vector<std::pair<int64_t, int64_t>> calls_;
};

QString settingsError(std::map<QByteArray, QByteArray> values) {
  EnvGuard guard(std::move(values));
  try {
    sae::DistributedSettings::fromEnvironment();
  } catch (const sae::ConfigError& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}

}  // namespace

class DistributedTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  // The core check: rank r trains on rows [r B, (r + 1) B) of every batch, one process on all
  // 2B rows; weights, Adam state and counters agree within float tolerance on both ranks, and
  // rank 0's logged losses are the combined batch's.
  void twoRanksMatchOneProcessOnTheCombinedBatch() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string folder = dir.path().toStdString();
    const sae::RunConfig config = tinyConfig();
    config.saveFile(folder + "/config.json");
    const torch::Tensor batches = makeBatches(config);
    sae::Safetensors::write(folder + "/batches.safetensors", {{"x", batches}});

    const QString self = QCoreApplication::applicationFilePath();
    const auto ranks = runRanks(self, {{"--worker", dir.path()}, {"--worker", dir.path()}}, 60000);
    for (const auto& rank : ranks)
      QVERIFY2(rank.exitCode == 0, qPrintable(describe(ranks)));

    // One process, the combined batches, starting from rank 0's SAE (seed 1000, rank 0's stream
    // for b_dec, which is the whole stream's).
    Setup reference = makeTrainer(config, 1000, {});
    Metrics referenceMetrics;
    for (int step = 0; step < kSteps; ++step)
      referenceMetrics.push_back(reference.trainer->trainStepOn(batches[step]).values);
    const std::string referenceFile = folder + "/state_reference.safetensors";
    reference.trainer->saveTrainingState(referenceFile);
    const auto expected = readState(referenceFile);

    // The test means something only if latents went silent on some steps, and differently on
    // the two halves of a batch.
    const torch::Tensor sinceFired = expected.at("trainer.n_forward_passes_since_fired");
    QVERIFY2(sinceFired.max().item<double>() > 0, "no latent was ever silent: a weak test");
    const torch::Tensor lastX = batches[kSteps - 1];
    const auto& sae = reference.trainer->sae();
    {
      torch::NoGradGuard noGrad;
      const torch::Tensor fires0 =
          (sae.forward(lastX.narrow(0, 0, kRowsPerRank), 0.0, {}, false).feature_acts > 0).any(0);
      const torch::Tensor fires1 =
          (sae.forward(lastX.narrow(0, kRowsPerRank, kRowsPerRank), 0.0, {}, false).feature_acts >
           0)
              .any(0);
      QVERIFY2((fires0 != fires1).any().item<bool>(),
               "every latent fires on both halves alike: the counters would agree unreduced");
    }

    for (int r = 0; r < kWorld; ++r) {
      const auto actual = readState(folder + "/state_rank" + std::to_string(r) + ".safetensors");
      int compared = 0;
      for (const auto& [name, tensor] : expected) {
        const bool isTrainerState = name.rfind("sae.", 0) == 0 || name.rfind("adam.", 0) == 0 ||
                                    name == "trainer.act_freq_scores" ||
                                    name == "trainer.n_forward_passes_since_fired" ||
                                    name == "trainer.counters";
        if (!isTrainerState) continue;  // store.*, rng.*, wall time: each rank's own
        QVERIFY2(actual.count(name), qPrintable("rank " + QString::number(r) + " has no " +
                                                QString::fromStdString(name)));
        const std::string problem = saetest::compareTensors(
            "rank " + std::to_string(r) + " " + name, actual.at(name).to(torch::kFloat64),
            tensor.to(torch::kFloat64), kAtol, kRtol);
        QVERIFY2(problem.empty(), problem.c_str());
        ++compared;
      }
      QCOMPARE(compared, 5 + 2 * 4 + 3);  // W_enc b_enc W_dec b_dec scaling_factor, Adam, counters
    }

    // Rank 0's metrics are the combined batch's (means over rows average exactly).
    const Metrics rank0 = readMetrics(folder + "/metrics_rank0.json");
    QCOMPARE(rank0.size(), referenceMetrics.size());
    for (size_t step = 0; step < rank0.size(); ++step) {
      for (const char* key :
           {"losses/mse_loss", "losses/l1_loss", "losses/ghost_grad_loss", "losses/overall_loss",
            "metrics/l0", "sparsity/dead_features", "details/n_training_tokens"}) {
        QVERIFY2(rank0[step].count(key) && referenceMetrics[step].count(key), key);
        const double a = rank0[step].at(key), e = referenceMetrics[step].at(key);
        QVERIFY2(saetest::close(a, e, 1e-6, 1e-5),
                 qPrintable(QString("step %1 %2: rank 0 logged %3, one process %4")
                                .arg(step)
                                .arg(key)
                                .arg(a, 0, 'g', 10)
                                .arg(e, 0, 'g', 10)));
      }
    }
  }

  // Each source gives the ranks disjoint shares (cached rows, token rows) or independent streams
  // over the same true features (synthetic); rank 0's synthetic stream is one process's.
  void dataSharesAreDisjoint() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string folder = dir.path().toStdString();
    int64_t first = 0;
    for (int file = 0; file < 3; ++file) {
      const int64_t rows = std::vector<int64_t>{5, 7, 4}[file];
      const torch::Tensor x =
          torch::arange(first, first + rows, torch::kFloat32).unsqueeze(1).repeat({1, 2});
      sae::Safetensors::write(folder + "/" + std::to_string(file) + ".safetensors",
                              {{"activations", x}});
      first += rows;
    }
    auto rowsOf = [](const torch::Tensor& x) { return x.select(1, 0).to(torch::kInt64); };
    sae::CachedActivationSource rank0(folder, 2, 0, 0, {0, 2}), rank1(folder, 2, 0, 0, {1, 2});
    QVERIFY(torch::equal(rowsOf(rank0.next(8)), torch::arange(0, 8)));
    QVERIFY(torch::equal(rowsOf(rank1.next(3)), torch::arange(8, 11)));
    QVERIFY(torch::equal(rowsOf(rank1.next(5)), torch::arange(11, 16)));
    try {
      rank0.next(1);
      QFAIL("rank 0 read past its share");
    } catch (const std::runtime_error& e) {
      QVERIFY2(QString(e.what()).contains("the share of data-parallel rank 0 of 2 (rows 0 to 7 of "
                                          "16) ran out after 8 rows"),
               e.what());
    }
    // Three ranks: 16 rows as 5, 5, 6; a share starting inside a file survives save/restore.
    sae::CachedActivationSource third(folder, 2, 0, 0, {2, 3});
    sae::CachedActivationSource restored(folder, 2, 0, 0, {2, 3});
    restored.restoreState(third.saveState());
    QVERIFY(torch::equal(rowsOf(restored.next(6)), torch::arange(10, 16)));
    QVERIFY(QString::fromStdString(third.describe()).contains("rank 2 of 3 reads rows 10 to 15"));

    auto whole = std::make_shared<CountingTokens>();
    sae::ShardedTokenSource tokens(whole, {1, 2});
    QCOMPARE(tokens.nextRows(2), (std::vector<int64_t>{200, 201, 202, 300, 301, 302}));
    QCOMPARE(tokens.nextRows(1), (std::vector<int64_t>{500, 501, 502}));
    using Calls = std::vector<std::pair<int64_t, int64_t>>;
    QVERIFY(whole->callHistory() == (Calls{{4, 1}, {2, 1}}));
    QVERIFY(tokens.callHistory() == (Calls{{2, 1}, {1, 1}}));
    auto fresh = std::make_shared<CountingTokens>();
    sae::ShardedTokenSource replayed(fresh, {1, 2});
    replayed.replayCalls(tokens.callHistory());
    QCOMPARE(replayed.nextRows(1), tokens.nextRows(1));

    sae::SyntheticOptions options;
    options.d_in = 8;
    options.n_features = 16;
    options.feature_probability = 0.2;
    options.noise_std = 0.1;
    options.seed = 5;
    sae::SyntheticActivationSource single(options);
    options.shard = {0, 2};
    sae::SyntheticActivationSource synthetic0(options);
    options.shard = {1, 2};
    sae::SyntheticActivationSource synthetic1(options);
    QVERIFY(torch::equal(synthetic1.trueFeatures(), single.trueFeatures()));
    const torch::Tensor expected = single.next(50);
    QVERIFY(torch::equal(synthetic0.next(50), expected));
    QVERIFY(!torch::allclose(synthetic1.next(50), expected));
  }

  // A rank that stops with an error ends the other one with that error instead of a hang.
  void aFailingRankEndsTheOthers() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string folder = dir.path().toStdString();
    const sae::RunConfig config = tinyConfig();
    config.saveFile(folder + "/config.json");
    sae::Safetensors::write(folder + "/batches.safetensors", {{"x", makeBatches(config)}});
    const QString self = QCoreApplication::applicationFilePath();
    const auto ranks =
        runRanks(self, {{"--worker", dir.path(), "fail"}, {"--worker", dir.path(), "fail"}}, 60000);
    QVERIFY2(ranks[1].exitCode == 3, qPrintable(describe(ranks)));
    QVERIFY2(ranks[0].exitCode == 4, qPrintable(describe(ranks)));
    QVERIFY2(ranks[0].err.contains("rank 1: simulated failure before step 2"),
             qPrintable(describe(ranks)));
  }

  // sae-train picks the ranks up from the environment: both finish, rank 0 writes its folder
  // (config, metrics, run.json "finished", final/), rank 1 writes nothing.
  void saeTrainRunsTwoRanksAndOnlyRankZeroWrites() {
    if (!QFileInfo::exists(kTrainer)) QSKIP("sae-train is not built");
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QStringList common = {"--preset", "synthetic-demo"};
    for (const QString& kv :
         {QString("d_in=16"), QString("expansion_factor=2"), QString("train_batch_size=64"),
          QString("context_size=16"), QString("store_batch_size=2"),
          QString("n_batches_in_buffer=4"), QString("synthetic_n_features=32"),
          QString("training_tokens=1280"), QString("n_checkpoints=2"), QString("lr_decay_steps=0"),
          QString("l1_warm_up_steps=0"), QString("feature_sampling_window=5"),
          QString("dead_feature_window=5"), QString("wandb_log_frequency=1"),
          QString("num_threads=1")})
      common << "--set" << kv;
    const QString run0 = dir.filePath("rank0"), run1 = dir.filePath("rank1");
    const auto ranks =
        runRanks(kTrainer,
                 {common + QStringList{"--out", run0}, common + QStringList{"--out", run1}}, 60000);
    for (const auto& rank : ranks)
      QVERIFY2(rank.exitCode == 0, qPrintable(describe(ranks)));
    QVERIFY2(QFileInfo::exists(run0 + "/final/sae_weights.safetensors"),
             qPrintable(describe(ranks)));
    QVERIFY(QFileInfo::exists(run0 + "/config.json"));
    QVERIFY(QFileInfo::exists(run0 + "/checkpoints/704/" + sae::Trainer::kStateFile));
    QVERIFY2(!QFileInfo::exists(run1), "rank 1 wrote a run folder");
    QVERIFY2(ranks[1].out.contains("rank 0 writes the run folder"), qPrintable(describe(ranks)));

    std::ifstream manifest((run0 + "/run.json").toStdString());
    const auto status = nlohmann::json::parse(manifest);
    QCOMPARE(QString::fromStdString(status.value("status", "")), QString("finished"));
    // 20 steps of the global batch of 64: n_training_tokens counts both ranks' rows.
    std::ifstream metrics((run0 + "/metrics.jsonl").toStdString());
    std::string line, last;
    int lines = 0;
    while (std::getline(metrics, line))
      if (!line.empty()) last = line, ++lines;
    QCOMPARE(lines, 20);
    QCOMPARE(nlohmann::json::parse(last)["details/n_training_tokens"].get<double>(), 1280.0);
  }

  // Ranks started with different settings would train a silent mix: refused at the start, and
  // rank 0 says which rank and why.
  void ranksWithDifferentConfigsAreRefused() {
    if (!QFileInfo::exists(kTrainer)) QSKIP("sae-train is not built");
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QStringList common = {"--preset", "synthetic-demo", "--set", "d_in=16",
                                "--set",    "num_threads=1",  "--set", "n_batches_in_buffer=4"};
    const auto ranks =
        runRanks(kTrainer,
                 {common + QStringList{"--out", dir.filePath("rank0")},
                  common + QStringList{"--set", "lr=0.5", "--out", dir.filePath("rank1")}},
                 60000);
    QVERIFY2(ranks[1].exitCode == 2 && ranks[1].err.contains("rank 1's config differs from rank "
                                                             "0's"),
             qPrintable(describe(ranks)));
    QVERIFY2(ranks[0].exitCode != 0 &&
                 ranks[0].err.contains("it stopped: rank 1: its config differs from rank 0's"),
             qPrintable(describe(ranks)));
  }

  void missingOrMalformedVariablesNameTheVariable() {
    // No WORLD_SIZE, or 1: one process.
    {
      EnvGuard guard({});
      QVERIFY(!sae::DistributedSettings::fromEnvironment());
    }
    {
      EnvGuard guard({{"WORLD_SIZE", "1"}, {"RANK", "0"}});
      QVERIFY(!sae::DistributedSettings::fromEnvironment());
    }
    const QString noRank = settingsError(
        {{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}});
    QVERIFY2(noRank.startsWith("RANK is not set (WORLD_SIZE is 2): set RANK to this process's "
                               "rank, 0 to 1"),
             qPrintable(noRank));
    const QString badWorld = settingsError({{"WORLD_SIZE", "two"}});
    QVERIFY2(badWorld.startsWith("WORLD_SIZE is 'two': expected a whole number >= 1"),
             qPrintable(badWorld));
    const QString badRank = settingsError({{"WORLD_SIZE", "2"}, {"RANK", "2"}});
    QVERIFY2(
        badRank.startsWith("RANK is '2' (WORLD_SIZE is 2): expected a whole number from 0 to 1"),
        qPrintable(badRank));
    const QString noAddr = settingsError({{"WORLD_SIZE", "2"}, {"RANK", "1"}});
    QVERIFY2(noAddr.startsWith("MASTER_ADDR is not set (WORLD_SIZE is 2): set it to the host name"),
             qPrintable(noAddr));
    const QString badPort = settingsError({{"WORLD_SIZE", "2"},
                                           {"RANK", "1"},
                                           {"MASTER_ADDR", "10.0.0.1"},
                                           {"MASTER_PORT", "70000"}});
    QVERIFY2(
        badPort.startsWith("MASTER_PORT is '70000': expected a TCP port number from 1 to 65535"),
        qPrintable(badPort));
    EnvGuard guard(
        {{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"MASTER_ADDR", "node1"}, {"MASTER_PORT", "29501"}});
    const auto settings = sae::DistributedSettings::fromEnvironment();
    QVERIFY(settings);
    QCOMPARE(settings->worldSize, 4);
    QCOMPARE(settings->rank, 3);
    QCOMPARE(QString::fromStdString(settings->masterAddr), QString("node1"));
    QCOMPARE(settings->masterPort, 29501);
  }

  // sae-train with RANK missing stops before any rendezvous, exit 2, naming the variable.
  void saeTrainNamesAMissingRank() {
    if (!QFileInfo::exists(kTrainer)) QSKIP("sae-train is not built");
    QProcess process;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("WORLD_SIZE", "2");
    env.insert("MASTER_ADDR", "127.0.0.1");
    env.insert("MASTER_PORT", QString::number(freePort()));
    env.remove("RANK");
    process.setProcessEnvironment(env);
    QTemporaryDir dir;
    process.start(kTrainer, {"--preset", "synthetic-demo", "--out", dir.filePath("run")});
    QVERIFY(process.waitForFinished(30000));
    const QString err = QString::fromUtf8(process.readAllStandardError());
    QCOMPARE(process.exitCode(), 2);
    QVERIFY2(err.contains("RANK is not set (WORLD_SIZE is 2)"), qPrintable(err));
    QVERIFY(!QFileInfo::exists(dir.filePath("run")));
  }

  // A peer that never arrives: each side says who waited for what, after the timeout.
  void aMissingPeerTimesOutWithAMessage() {
    sae::DistributedSettings settings;
    settings.masterAddr = "127.0.0.1";
    settings.masterPort = freePort();
    settings.worldSize = 2;
    settings.rendezvousTimeout = std::chrono::seconds(1);
    settings.rank = 0;
    QElapsedTimer timer;
    timer.start();
    try {
      sae::DistributedContext context(settings);
      QFAIL("rank 0 alone did not time out");
    } catch (const std::runtime_error& e) {
      const QString message = e.what();
      QVERIFY2(message.contains("rank 0 of 2 waited 1 s at 127.0.0.1:") &&
                   message.contains("only 1 of 2 ranks arrived") &&
                   message.contains("SAEWB_DIST_TIMEOUT"),
               qPrintable(message));
    }
    settings.rank = 1;
    settings.masterPort = freePort();
    try {
      sae::DistributedContext context(settings);
      QFAIL("rank 1 without rank 0 did not time out");
    } catch (const std::runtime_error& e) {
      const QString message = e.what();
      QVERIFY2(message.contains("rank 1 of 2 could not reach rank 0's rendezvous at 127.0.0.1:"),
               qPrintable(message));
    }
    QVERIFY2(timer.elapsed() < 15000, qPrintable(QString::number(timer.elapsed())));
  }
};

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--worker")
    return workerMain(argv[2], argc >= 4 && std::string(argv[3]) == "fail");
  QCoreApplication app(argc, argv);
  DistributedTest test;
  return QTest::qExec(&test, argc, argv);
}

#include "tst_distributed.moc"
