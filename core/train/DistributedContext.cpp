#include "train/DistributedContext.h"

#include <charconv>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

// Debian's LibTorch is built with Gloo: its CMake target defines USE_C10D_GLOO for every
// consumer and libtorch_cpu.so carries c10d::ProcessGroupGloo (libgloo-dev has the headers).
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "config/ConfigError.h"

namespace sae {

namespace {

constexpr const char* kArrivedKey = "saewb/arrived";
constexpr const char* kFailureKey = "saewb/failure";
constexpr const char* kTorchrunHint =
    "torchrun sets MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE for every process; by hand, "
    "start WORLD_SIZE processes with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE and RANK "
    "0, 1, ...";

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return std::nullopt;
  std::string s(value);
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return std::string();
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// A whole decimal number, nothing else ("2", not "2x", "", "1.5" or "0x2").
std::optional<long long> parseInteger(const std::string& text) {
  long long value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

// c10::Error's what() carries a C++ backtrace; users need the first line.
std::string messageOf(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

bool isLoopback(const std::string& address) {
  return address == "localhost" || address == "::1" || address.rfind("127.", 0) == 0;
}

std::string seconds(std::chrono::milliseconds ms) {
  std::ostringstream s;
  s << static_cast<double>(ms.count()) / 1000.0 << " s";
  return s.str();
}

}  // namespace

std::optional<DistributedSettings> DistributedSettings::fromEnvironment() {
  const auto worldText = env("WORLD_SIZE");
  if (!worldText || worldText->empty()) return std::nullopt;
  const auto world = parseInteger(*worldText);
  if (!world || *world < 1 || *world > 65536)
    throw ConfigError("WORLD_SIZE is " + quoted(*worldText) +
                      ": expected a whole number >= 1, the number of processes of a data-parallel "
                      "run; unset WORLD_SIZE (or set it to 1) to train in one process");
  if (*world == 1) return std::nullopt;

  DistributedSettings s;
  s.worldSize = static_cast<int>(*world);
  const std::string context = " (WORLD_SIZE is " + *worldText + ")";

  const auto rankText = env("RANK");
  if (!rankText || rankText->empty())
    throw ConfigError("RANK is not set" + context + ": set RANK to this process's rank, 0 to " +
                      std::to_string(s.worldSize - 1) + "; " + kTorchrunHint);
  const auto rank = parseInteger(*rankText);
  if (!rank || *rank < 0 || *rank >= s.worldSize)
    throw ConfigError("RANK is " + quoted(*rankText) + context +
                      ": expected a whole number from 0 to " + std::to_string(s.worldSize - 1) +
                      ", a different one for every process");
  s.rank = static_cast<int>(*rank);

  const auto addr = env("MASTER_ADDR");
  if (!addr || addr->empty())
    throw ConfigError("MASTER_ADDR is not set" + context +
                      ": set it to the host name or IP address of rank 0's machine (127.0.0.1 "
                      "when every process runs on this machine); " +
                      kTorchrunHint);
  s.masterAddr = *addr;

  const auto portText = env("MASTER_PORT");
  if (!portText || portText->empty())
    throw ConfigError("MASTER_PORT is not set" + context +
                      ": set it to a TCP port that is free on rank 0's machine (torchrun uses "
                      "29500), the same for every process");
  const auto port = parseInteger(*portText);
  if (!port || *port < 1 || *port > 65535)
    throw ConfigError("MASTER_PORT is " + quoted(*portText) +
                      ": expected a TCP port number from 1 to 65535 that is free on rank 0's "
                      "machine (torchrun uses 29500)");
  s.masterPort = static_cast<int>(*port);

  if (const auto timeoutText = env("SAEWB_DIST_TIMEOUT"); timeoutText && !timeoutText->empty()) {
    const auto timeout = parseInteger(*timeoutText);
    if (!timeout || *timeout < 1)
      throw ConfigError("SAEWB_DIST_TIMEOUT is " + quoted(*timeoutText) +
                        ": expected a whole number of seconds >= 1, how long a rank waits for "
                        "the others to arrive; unset it for the default (300)");
    s.rendezvousTimeout = std::chrono::seconds(*timeout);
  }
  return s;
}

struct DistributedContext::Impl {
  DistributedSettings settings;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  std::string backend;
};

DistributedContext::DistributedContext(const DistributedSettings& settings, const Log& log)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = settings;
  const auto& s = settings;
  const std::string me = "rank " + std::to_string(s.rank) + " of " + std::to_string(s.worldSize);
  const std::string where = s.masterAddr + ":" + std::to_string(s.masterPort);
  if (log) log("Data-parallel: " + me + ", rendezvous at " + where + " (waiting for every rank)");

  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(s.masterPort);
  options.isServer = s.rank == 0;
  options.numWorkers = static_cast<std::size_t>(s.worldSize);
  // Our own arrival count below says who is missing; c10d's wait gives up silently.
  options.waitWorkers = false;
  options.timeout = s.rendezvousTimeout;
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(s.masterAddr, options);
  } catch (const std::exception& e) {
    if (s.rank == 0)
      throw std::runtime_error(me + " could not host the rendezvous on MASTER_PORT " +
                               std::to_string(s.masterPort) + " (" + messageOf(e) +
                               "): pick a MASTER_PORT that is free on this machine, the same "
                               "for every rank");
    throw std::runtime_error(me + " could not reach rank 0's rendezvous at " + where + " within " +
                             seconds(s.rendezvousTimeout) + " (" + messageOf(e) +
                             "): start rank 0 with the same MASTER_ADDR, MASTER_PORT and "
                             "WORLD_SIZE, check that MASTER_ADDR is reachable from this machine, "
                             "or raise SAEWB_DIST_TIMEOUT (seconds)");
  }

  // Every rank counts itself in and waits for the count to reach WORLD_SIZE.
  const auto deadline = std::chrono::steady_clock::now() + s.rendezvousTimeout;
  int64_t arrived = 0;
  try {
    arrived = impl_->store->add(kArrivedKey, 1);
    while (arrived < s.worldSize) {
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      arrived = impl_->store->add(kArrivedKey, 0);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(me + ": the rendezvous at " + where + " failed (" + messageOf(e) +
                             "); rank 0 hosts it, so it has probably stopped: see its output");
  }
  if (arrived < s.worldSize)
    throw std::runtime_error(
        me + " waited " + seconds(s.rendezvousTimeout) + " at " + where + " but only " +
        std::to_string(arrived) + " of " + std::to_string(s.worldSize) +
        " ranks arrived: start the missing ranks with the same MASTER_ADDR, "
        "MASTER_PORT and WORLD_SIZE (and RANK 0 to " +
        std::to_string(s.worldSize - 1) + "), or raise SAEWB_DIST_TIMEOUT (seconds)");

    // CPU tensors go through Gloo. A CUDA LibTorch built with NCCL defines USE_C10D_NCCL; there
    // c10d::ProcessGroupNCCL(store, rank, size, options) plugs in here for CUDA tensors (the
    // trainer trains on the CPU today, so Gloo is the backend in every build).
#ifdef USE_C10D_NCCL
  if (log) log("Data-parallel: this LibTorch has NCCL, but the trainer works on CPU tensors: Gloo");
#endif
  try {
    auto gloo = c10d::ProcessGroupGloo::Options::create(s.collectiveTimeout);
    if (const auto ifnames = env("GLOO_SOCKET_IFNAME"); ifnames && !ifnames->empty()) {
      // As in torch.distributed: comma-separated interfaces to bind to.
      std::stringstream list(*ifnames);
      for (std::string name; std::getline(list, name, ',');)
        if (!name.empty())
          gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
    } else if (isLoopback(s.masterAddr)) {
      // Every rank on this machine: loopback needs no network interface at all.
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      // The address this host's name resolves to (torch.distributed's default).
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    impl_->group =
        c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, s.rank, s.worldSize, gloo);
    impl_->backend = "gloo";
  } catch (const std::exception& e) {
    throw std::runtime_error(
        me + ": Gloo could not connect the ranks after the rendezvous at " + where + " (" +
        messageOf(e) +
        "); when the machines' host names resolve to loopback addresses, set GLOO_SOCKET_IFNAME "
        "to the network interface to use (e.g. eth0) on every machine");
  }
  // Later store reads only look for a failure note: they must not wait long.
  impl_->store->setTimeout(std::chrono::seconds(5));
  if (log) log("Data-parallel: " + describe() + ", all ranks connected");
}

DistributedContext::~DistributedContext() = default;

std::shared_ptr<DistributedContext> DistributedContext::fromEnvironment(const Log& log) {
  static std::mutex mutex;
  static std::shared_ptr<DistributedContext> shared;
  std::lock_guard<std::mutex> lock(mutex);
  const auto settings = DistributedSettings::fromEnvironment();
  if (!settings) return nullptr;
  if (shared) {
    const auto& had = shared->impl_->settings;
    if (had.rank != settings->rank || had.worldSize != settings->worldSize ||
        had.masterAddr != settings->masterAddr || had.masterPort != settings->masterPort)
      throw std::runtime_error("the data-parallel settings changed within one process (now " +
                               settings->masterAddr + ":" + std::to_string(settings->masterPort) +
                               ", was " + shared->describe() + "); start a new process instead");
    return shared;
  }
  shared = std::make_shared<DistributedContext>(*settings, log);
  return shared;
}

int DistributedContext::rank() const {
  return impl_->settings.rank;
}

int DistributedContext::worldSize() const {
  return impl_->settings.worldSize;
}

std::string DistributedContext::describe() const {
  const auto& s = impl_->settings;
  return "rank " + std::to_string(s.rank) + " of " + std::to_string(s.worldSize) + " (" +
         impl_->backend + ", rendezvous at " + s.masterAddr + ":" + std::to_string(s.masterPort) +
         ")";
}

void DistributedContext::collective(const char* what, const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    // A peer's process ended (its sockets closed) or it stopped answering. If it left a note
    // before it went, say what it was.
    std::string note;
    try {
      if (impl_->store->check({kFailureKey})) {
        const auto bytes = impl_->store->get(kFailureKey);
        note = std::string(bytes.begin(), bytes.end());
      }
    } catch (const std::exception&) {
      // Rank 0 hosts the store: when it is the one that stopped, there is no note to read.
    }
    throw std::runtime_error(
        "data-parallel " + describe() + ": " + what + " with the other ranks failed (" +
        messageOf(e) + "); " +
        (note.empty() ? "another rank has probably stopped with an error: see its output"
                      : "it stopped: " + note));
  }
}

void DistributedContext::allReduceSum(torch::Tensor& tensor) {
  if (!tensor.is_contiguous() || tensor.device().type() != torch::kCPU)
    throw std::logic_error("DistributedContext::allReduceSum needs a contiguous CPU tensor");
  collective("an all-reduce", [&] {
    std::vector<at::Tensor> tensors{tensor};
    impl_->group->allreduce(tensors)->wait();
  });
}

void DistributedContext::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  torch::NoGradGuard noGrad;
  for (const auto& target : tensors) {
    if (!target.defined()) continue;
    std::vector<at::Tensor> buffer{target.detach().contiguous()};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    collective("a broadcast", [&] { impl_->group->broadcast(buffer, options)->wait(); });
    // A non-contiguous target got a copy: write the received values back into it.
    if (buffer[0].data_ptr() != target.data_ptr()) target.detach().copy_(buffer[0]);
  }
}

void DistributedContext::reportFailure(const std::string& message) noexcept {
  try {
    const std::string note = "rank " + std::to_string(rank()) + ": " + message;
    // The first note wins: a rank whose collective failed because of it reports too.
    impl_->store->compareSet(kFailureKey, {}, std::vector<uint8_t>(note.begin(), note.end()));
  } catch (...) {
    // Best effort: the peers still stop when this process's connections close.
  }
}

}  // namespace sae
