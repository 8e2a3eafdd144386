#pragma once
// Size and schedule of the demo world's language model (torch-free, so DemoWorld.h and the GUI
// can hold one). The defaults train in a few minutes on two CPU cores.
#include <cstdint>

namespace sae {

struct DemoModelOptions {
  // gelu-1l's family at a small size: 1 layer, GELU (erf) MLP, LayerNorm, learned positions.
  int64_t dModel = 128;
  int64_t dMlp = 512;
  int64_t nHeads = 4;
  int64_t nCtx = 128;
  // Adam with linear warm-up then cosine decay to minLrFraction * lr; gradients clipped at 1.
  int64_t steps = 300;
  int64_t batchSize = 16;
  double lr = 3e-3;
  int64_t warmupSteps = 30;
  double minLrFraction = 0.1;
  // The last heldOutFraction of the token stream is never trained on; the reported loss is the
  // mean over up to evalRows rows taken from it.
  double heldOutFraction = 0.05;
  int64_t evalRows = 64;
  uint64_t seed = 1;
  // Torch intra-op threads while training (restored afterwards); 0 keeps the current setting.
  int threads = 2;
};

struct DemoModelReport {
  int64_t steps = 0;
  double seconds = 0;
  double initialHeldOutLoss = 0;  // before training (about log(d_vocab))
  double finalTrainLoss = 0;      // mean of the last 20 steps' batch losses
  double heldOutLoss = 0;         // after training, on the held-out tail of the stream
  int64_t trainTokens = 0;        // size of the training part of the stream
};

}  // namespace sae
