#include "train/LrScheduler.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace sae {

namespace {

using Phase = LrScheduler::Phase;
using Kind = Phase::Kind;

constexpr double kPi = 3.141592653589793;  // Python's math.pi
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Python's integer floor division (main_steps // num_cycles may see a negative main phase).
int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// bisect.bisect_right, step for step (SequentialLR relies on it even for unsorted milestones).
size_t bisectRight(const std::vector<int64_t>& a, int64_t x) {
  size_t lo = 0, hi = a.size();
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (x < a[mid]) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// CosineAnnealingWarmRestarts.step(epoch) with T_mult = 1; epochZero = step(0) (also taken by
// step() while last_epoch < 0, as torch does).
void stepWarmRestarts(Phase& p, double& lr, bool epochZero) {
  if (!epochZero && p.lastEpoch < 0) epochZero = true;
  if (epochZero) {
    // epoch 0 < T_0 always (T_0 >= 1 is checked at construction).
    p.tI = p.t0;
    p.tCur = 0;
    p.lastEpoch = 0;
  } else {
    p.lastEpoch += 1;
    p.tCur += 1;
    if (p.tCur >= p.tI) p.tCur -= p.tI;  // T_i *= T_mult (1)
  }
  lr = p.etaMin +
       (p.baseLr - p.etaMin) *
           (1 + std::cos(kPi * static_cast<double>(p.tCur) / static_cast<double>(p.tI))) / 2;
}

// _LRScheduler.step(epoch=0): _get_closed_form_lr where the class has one, else get_lr.
double closedFormAtZero(const Phase& p, double lr) {
  switch (p.kind) {
    case Kind::Linear:
      if (p.totalIters == 0) return kNaN;  // torch: ZeroDivisionError
      return p.baseLr *
             (p.startFactor + (p.endFactor - p.startFactor) *
                                  static_cast<double>(std::min<int64_t>(p.totalIters, 0)) /
                                  static_cast<double>(p.totalIters));
    case Kind::Lambda:
      return p.baseLr * 1.0;
    case Kind::Cosine:
      if (p.tMax == 0) return kNaN;
      return p.etaMin +
             (p.baseLr - p.etaMin) * (1 + std::cos(kPi * 0.0 / static_cast<double>(p.tMax))) / 2;
    case Kind::CosineWarmRestarts:
      break;
  }
  return lr;
}

// The chainable get_lr of each class, torch 1.13, operand order kept so doubles round alike.
double chainableLr(const Phase& p, double lr) {
  const auto e = static_cast<double>(p.lastEpoch);
  switch (p.kind) {
    case Kind::Linear: {
      if (p.lastEpoch == 0) return lr * p.startFactor;
      if (p.lastEpoch > p.totalIters) return lr;
      const double denom = static_cast<double>(p.totalIters) * p.startFactor +
                           static_cast<double>(p.lastEpoch - 1) * (p.endFactor - p.startFactor);
      if (denom == 0.0) return kNaN;
      return lr * (1. + (p.endFactor - p.startFactor) / denom);
    }
    case Kind::Lambda:
      return p.baseLr * 1.0;
    case Kind::Cosine: {
      const auto tMax = static_cast<double>(p.tMax);
      if (p.lastEpoch == 0) return lr;
      if (p.tMax == 0) return kNaN;  // torch: ZeroDivisionError
      if (p.stepCount == 1 && p.lastEpoch > 0) {
        return p.etaMin + (p.baseLr - p.etaMin) * (1 + std::cos(e * kPi / tMax)) / 2;
      }
      if ((p.lastEpoch - 1 - p.tMax) % (2 * p.tMax) == 0) {
        return lr + (p.baseLr - p.etaMin) * (1 - std::cos(kPi / tMax)) / 2;
      }
      const double denom = 1 + std::cos(kPi * (e - 1) / tMax);
      if (denom == 0.0) return kNaN;
      return (1 + std::cos(kPi * e / tMax)) / denom * (lr - p.etaMin) + p.etaMin;
    }
    case Kind::CosineWarmRestarts:
      break;
  }
  return lr;
}

// scheduler.step() / scheduler.step(0) on one phase, updating the optimiser's lr.
void stepPhase(Phase& p, double& lr, bool epochZero) {
  if (p.kind == Kind::CosineWarmRestarts) {
    stepWarmRestarts(p, lr, epochZero);
    return;
  }
  p.stepCount += 1;
  if (epochZero) {
    p.lastEpoch = 0;
    lr = closedFormAtZero(p, lr);
  } else {
    p.lastEpoch += 1;
    lr = chainableLr(p, lr);
  }
}

// _LRScheduler.__init__ -> _initial_step(): reset the counter and step once.
void initialStep(Phase& p, double& lr) {
  p.stepCount = 0;
  stepPhase(p, lr, false);
}

}  // namespace

LrScheduler::LrScheduler(const std::string& name, double lr, int64_t trainingSteps,
                         int64_t warmUpSteps, int64_t decaySteps, double lrEnd, int64_t numCycles)
    : name_(name),
      lr_(lr),
      lrEnd_(lrEnd),
      trainingSteps_(trainingSteps),
      warmUp_(warmUpSteps),
      decay_(decaySteps),
      numCycles_(numCycles) {
  std::transform(name_.begin(), name_.end(), name_.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });

  // The construction order of get_lr_scheduler: main phase, warm-up, decay, SequentialLR.
  // Each torch constructor steps once and changes the optimiser's lr; SequentialLR resets it.
  State state;
  state.groupLr = lr;
  const int64_t mainSteps = trainingSteps - warmUpSteps - decaySteps;
  Phase main;
  main.baseLr = lr;
  if (name_ == "constant") {
    main.kind = Kind::Lambda;
  } else if (name_ == "cosineannealing") {
    main.kind = Kind::Cosine;
    main.tMax = mainSteps;
    main.etaMin = lrEnd;
  } else if (name_ == "cosineannealingwarmrestarts") {
    main.kind = Kind::CosineWarmRestarts;
    if (numCycles == 0) throw std::invalid_argument("integer division or modulo by zero");
    main.t0 = floorDiv(mainSteps, numCycles);
    if (main.t0 <= 0) {
      throw std::invalid_argument("Expected positive integer T_0, but got " +
                                  std::to_string(main.t0));
    }
    main.tI = main.t0;
    main.tCur = -1;
    main.etaMin = lrEnd;
  } else {
    throw std::invalid_argument("Unsupported scheduler: " + name_);
  }
  initialStep(main, state.groupLr);
  // "constant ignores lr_end, so decay needs to start at lr"
  double decayLrEnd = name_ == "constant" ? lr : lrEnd;

  if (warmUpSteps > 0) {
    Phase warm;
    warm.kind = Kind::Linear;
    warm.baseLr = lr;
    warm.startFactor = 1.0 / static_cast<double>(warmUpSteps);
    warm.endFactor = 1.0;
    warm.totalIters = warmUpSteps - 1;
    initialStep(warm, state.groupLr);
    state.phases.push_back(warm);
    milestones_.push_back(warmUpSteps);
  }
  state.phases.push_back(main);
  if (decaySteps > 0) {
    if (decayLrEnd == 0.0) {
      throw std::invalid_argument(
          "Cannot have decay_steps with lr_end=0.0, this would decay from 0 to 0 and be a "
          "waste.");
    }
    if (lr == 0.0) throw std::invalid_argument("float division by zero");
    Phase decay;
    decay.kind = Kind::Linear;
    decay.baseLr = lr;
    decay.startFactor = decayLrEnd / lr;
    decay.endFactor = 0.0;
    decay.totalIters = decaySteps;
    if (decay.startFactor > 1.0 || decay.startFactor < 0) {
      throw std::invalid_argument("Starting multiplicative factor expected to be between 0 and 1.");
    }
    initialStep(decay, state.groupLr);
    state.phases.push_back(decay);
    milestones_.push_back(trainingSteps - decaySteps);
  }

  // SequentialLR.__init__: lr back to initial_lr, undo each constructor's step, then the
  // first phase's initial step.
  state.sequentialLastEpoch = 0;
  state.groupLr = lr;
  for (auto& phase : state.phases)
    phase.lastEpoch -= 1;
  initialStep(state.phases.front(), state.groupLr);

  snapshots_.push_back(state);
  const int64_t last = std::max<int64_t>(trainingSteps, 0);
  for (int64_t step = 1; step <= last; ++step) {
    sequentialStep(state);
    if (step % kSnapshotEvery == 0) snapshots_.push_back(state);
  }
}

void LrScheduler::sequentialStep(State& state) const {
  state.sequentialLastEpoch += 1;
  const size_t idx = bisectRight(milestones_, state.sequentialLastEpoch);
  const bool restart = idx > 0 && milestones_[idx - 1] == state.sequentialLastEpoch;
  stepPhase(state.phases[idx], state.groupLr, restart);
  state.steps += 1;
}

double LrScheduler::lrAt(int64_t step) const {
  if (step < 0) throw std::out_of_range("LrScheduler::lrAt: negative step");
  const auto index =
      std::min<size_t>(static_cast<size_t>(step / kSnapshotEvery), snapshots_.size() - 1);
  State state = snapshots_[index];
  while (state.steps < step)
    sequentialStep(state);
  return state.groupLr;
}

}  // namespace sae
