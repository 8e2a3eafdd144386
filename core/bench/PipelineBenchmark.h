#pragma once
// `sae-train --benchmark-pipeline`: end-to-end training throughput with the language model in
// the loop, against the SAE step alone. For the demo preset (the demo world's model and corpus,
// the SAE as the run starts) and for a gelu-1l-sized random HookedTransformer on a random token
// stream (the SAE's encoder bias set so that L0 is 64, as a trained SAE's, so that it takes the
// sparse step as most of a real run does), the same bounded Trainer::run (several buffer
// refills) is timed
//   - with prefetch on: the store's producer thread runs the model for the next buffer while
//     the SAE trains on the current one (ActivationStore::prefetchNextBuffer);
//   - the same with the producer at one intra-op thread;
//   - with prefetch off: every refill's forward passes run on the training thread;
//   - step only: the same steps, with the source replaying the very rows the model produced in
//     the first run (recorded in memory), so the batches, the SAE and every step are identical
//     and only the model's forward passes are gone (the store's shuffles still run);
// and the model's activations/s on its own is read off the prefetch-off run's forward passes,
// which nothing else runs beside. The model is timed by a LanguageModelActivationSource
// subclass around next(), so the trainer still sees a language model. The window that counts
// starts after the first step (which reads the two initial buffers in every mode and chooses
// the kernels) and ends with the last step. Torch-free header, so sae-train's argument parsing
// can include it.
#include <cstdint>
#include <string>
#include <vector>

namespace sae {

struct PipelineRunFigures {
  std::string name;  // "prefetch on", "prefetch on, producer 1 thread", "prefetch off", "step only"
  bool prefetch = false;
  int producer_threads = 0;  // intra-op threads of the model's forward passes (0: no model)
  double total_seconds = 0;  // the whole Trainer::run
  double seconds = 0;        // the window: end of step 1 to the end of the last step
  double tokens_per_s = 0;   // window tokens / window seconds
  int64_t prefetched_buffers = 0;
  // The model's forward passes (LanguageModelActivationSource::next) inside the window.
  int64_t reads = 0;
  double read_seconds = 0;
  double read_rows_per_s = 0;  // activations/s of those reads (slowed by whatever ran beside)
  // Prefetch on: time the training thread waited for a prefetched buffer (the part of the
  // producer's read that was not hidden), end of the read minus start of the step that needs it.
  double wait_seconds = 0;
  // Window seconds not spent waiting for the model, per step: the SAE step plus the store's
  // work, slowed down by the producer where one runs beside it.
  double step_seconds = 0;
  int64_t sparse_steps = 0;                // window steps that took the sparse-aware path
  double last_l0 = 0;                      // L0 of the last step's batch
  std::vector<double> window_seconds_all;  // every round's window (the figures are the shortest)
};

struct PipelineCaseResult {
  std::string name;   // "demo", "gelu-1l-sized random model"
  std::string model;  // the source's description
  std::string hook;
  int64_t d_in = 0, d_sae = 0, train_batch_size = 0, context_size = 0, store_batch_size = 0,
          n_batches_in_buffer = 0;
  int64_t rows_per_refill = 0;   // rows the model produces per refill
  int64_t steps_per_refill = 0;  // train batches per refill
  int64_t steps = 0;             // steps of each run
  int64_t window_steps = 0;      // steps timed (all but the first)
  int64_t window_refills = 0;    // refills inside the window (each prefetched when on)
  double calibrated_l0 = 0;      // target L0 of the encoder-bias calibration (0: none)
  int trainer_threads = 0;
  int rounds = 1;            // each run repeated this often; per run the shortest window counts
  double setup_seconds = 0;  // building the source (the demo world, the random model)
  std::vector<PipelineRunFigures> runs;  // prefetch on, on with 1 producer thread, off, step only
  double lm_activations_per_s = 0;       // prefetch-off reads: the model alone
  double ratio_prefetch_on = 0;          // tokens/s prefetch on / step only
  double ratio_prefetch_on_1_thread = 0;
  double ratio_prefetch_off = 0;
  // 1 - waits / producer read seconds (prefetch on): the share of the model's time hidden.
  double hidden_fraction = 0;
  // (window seconds off - window seconds on) / model seconds of the off run: the wall time the
  // prefetch removed, as a share of the model's own time (contention included).
  double effective_hidden_fraction = 0;
  double effective_hidden_fraction_1_thread = 0;
  bool same_weights = false;  // every run ended with the same SAE weights, bit for bit
};

class PipelineBenchmark {
 public:
  // The demo preset as it starts (its SAE takes the dense step until L0 falls under 20% of
  // d_sae, around step 200 of the run), steps_per_refill * (refills + 1) steps.
  static PipelineCaseResult measureDemo(int64_t refills = 3, int rounds = 3);
  // gelu-1l-sized random model, the notebook's SAE recipe at d_sae = 32 * 512, batch 4096.
  static PipelineCaseResult measureRandomGelu1l(int64_t refills = 2, int rounds = 1);
  // Prints the figures (or a JSON object with json=true) and returns the exit code.
  static int runCommandLine(bool json);
};

}  // namespace sae
