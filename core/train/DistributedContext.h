#pragma once
// Data-parallel training on PyTorch's own distributed engine, c10d: the rendezvous the way
// torchrun sets it up (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE), a TCPStore hosted by rank 0,
// and a ProcessGroupGloo over CPU tensors. The c10d and Gloo headers stay in the .cpp.
//
// What a run reduces (Trainer): parameters are broadcast from rank 0 at the start and after the
// b_dec initialisation; each step's gradients are averaged (weighted by rows) before clipping,
// the firing counters are summed so every rank holds the counters of the combined batch, and the
// logged values are averaged so rank 0's metrics describe the combined batch.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/DataShard.h"

namespace sae {

struct DistributedSettings {
  std::string masterAddr;
  int masterPort = 0;
  int rank = 0;
  int worldSize = 1;
  // How long a rank waits for the others to arrive (SAEWB_DIST_TIMEOUT, seconds).
  std::chrono::milliseconds rendezvousTimeout{std::chrono::minutes(5)};
  // How long one collective may wait for a peer (c10d's default: 30 minutes).
  std::chrono::milliseconds collectiveTimeout{std::chrono::minutes(30)};

  // The settings torchrun's variables describe: std::nullopt for a single process (WORLD_SIZE
  // unset, empty or 1). With WORLD_SIZE > 1, MASTER_ADDR, MASTER_PORT and RANK are required.
  // Throws ConfigError naming the variable, its value, what is expected and what to do.
  static std::optional<DistributedSettings> fromEnvironment();
};

class DistributedContext {
 public:
  using Log = std::function<void(const std::string&)>;

  // Joins the rendezvous: rank 0 hosts the TCPStore on MASTER_PORT, every rank waits until all
  // WORLD_SIZE ranks have arrived, then Gloo connects them. Throws std::runtime_error saying
  // which rank waited for what when a peer never arrives within the rendezvous timeout, or the
  // port cannot be bound or reached.
  explicit DistributedContext(const DistributedSettings& settings, const Log& log = {});
  ~DistributedContext();
  DistributedContext(const DistributedContext&) = delete;
  DistributedContext& operator=(const DistributedContext&) = delete;

  // The process's context from the environment: created on the first call, then shared (a
  // second TrainingRun in the same process, or a sweep's trainers, reuse the connections).
  // nullptr for a single process. Throws as fromEnvironment() and the constructor do.
  static std::shared_ptr<DistributedContext> fromEnvironment(const Log& log = {});

  int rank() const;
  int worldSize() const;
  // Rank 0 writes the run folder; the others write nothing.
  bool writesOutput() const { return rank() == 0; }
  DataShard shard() const { return {rank(), worldSize()}; }
  // "rank 1 of 2 (gloo, rendezvous at 127.0.0.1:29500)".
  std::string describe() const;

  // In place over all ranks. The tensor must be a contiguous CPU tensor. Every rank must make
  // the same calls in the same order. Throws std::runtime_error when a peer is gone (its
  // process ended: the other ranks stop too instead of hanging) or the collective times out.
  void allReduceSum(torch::Tensor& tensor);
  // Overwrites each tensor (in place, without autograd) with rank `root`'s values.
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  // Best effort, never throws: leaves `message` in the rendezvous store so the ranks whose next
  // collective fails can say which rank stopped and why.
  void reportFailure(const std::string& message) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  void collective(const char* what, const std::function<void()>& body);
};

}  // namespace sae
