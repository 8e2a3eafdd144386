#include "runs/RunManifest.h"

#include <unistd.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <torch/version.h>
#include <nlohmann/json.hpp>

#include "config/AtomicFile.h"

namespace fs = std::filesystem;

namespace sae {

namespace {

double systemUnixSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string hostName() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

bool isEndState(const std::string& status) {
  return status == "finished" || status == "stopped" || status == "failed";
}

}  // namespace

RunManifest::RunManifest(const std::string& runDir, int64_t totalTokens, int64_t totalSteps,
                         Options options)
    : path_((fs::path(runDir) / kFileName).string()), options_(std::move(options)) {
  if (!options_.clock) options_.clock = systemUnixSeconds;
  if (options_.resume && fs::exists(path_)) {
    const RunManifestData previous = load(path_);
    data_.start_time = previous.start_time;
    data_.tokens_done = previous.tokens_done;
    data_.step = previous.step;
  } else {
    data_.start_time = isoTime(options_.clock());
  }
  data_.status = "running";
  data_.total_tokens = totalTokens;
  data_.total_steps = totalSteps;
  data_.app_version = SAEWB_VERSION;
  data_.libtorch_version = TORCH_VERSION;
  data_.hostname = hostName();
  data_.pid = static_cast<int64_t>(getpid());
  std::lock_guard<std::mutex> lock(mutex_);
  writeLocked();
}

void RunManifest::markFinished() {
  setStatus("finished", "");
}

void RunManifest::markStopped(const std::string& message) {
  setStatus("stopped", message);
}

void RunManifest::markFailed(const std::string& message) {
  setStatus("failed", message);
}

void RunManifest::setStatus(const std::string& status, const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (data_.status != "running" && data_.status != status && status != "failed") {
    throw std::logic_error("run.json '" + path_ + "': cannot change status from '" + data_.status +
                           "' to '" + status + "'");
  }
  data_.status = status;
  data_.message = message;
  data_.end_time = isoTime(options_.clock());
  writeLocked();
}

void RunManifest::onProgress(const ProgressEvent& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  data_.tokens_done = event.tokens_done;
  data_.step = event.step;
  const double since =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - lastWrite_).count();
  if (since >= options_.progressWriteSeconds) writeLocked();
}

void RunManifest::onCheckpoint(const std::string& /*folder*/) {
  std::lock_guard<std::mutex> lock(mutex_);
  writeLocked();
}

void RunManifest::onFinished(const std::string& /*finalFolder*/) {
  markFinished();
}

RunManifestData RunManifest::data() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return data_;
}

void RunManifest::writeLocked() {
  data_.updated_time = isoTime(options_.clock());
  AtomicFile::write(path_, toJson(data_));
  lastWrite_ = std::chrono::steady_clock::now();
}

std::string RunManifest::isoTime(double unixSeconds) {
  const std::time_t seconds = static_cast<std::time_t>(std::floor(unixSeconds));
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string RunManifest::toJson(const RunManifestData& data) {
  nlohmann::ordered_json json;
  json["status"] = data.status;
  json["message"] = data.message;
  json["tokens_done"] = data.tokens_done;
  json["total_tokens"] = data.total_tokens;
  json["step"] = data.step;
  json["total_steps"] = data.total_steps;
  json["start_time"] = data.start_time;
  json["end_time"] = data.end_time;
  json["updated_time"] = data.updated_time;
  json["app_version"] = data.app_version;
  json["libtorch_version"] = data.libtorch_version;
  json["hostname"] = data.hostname;
  json["pid"] = data.pid;
  return json.dump(2) + "\n";
}

RunManifestData RunManifest::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot read run file '" + path +
                             "': it does not exist or is not readable");
  }
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("run file '" + path + "' is not valid JSON (" + e.what() + ")");
  }
  if (!json.is_object()) {
    throw std::runtime_error("run file '" + path + "' must hold a JSON object");
  }
  RunManifestData data;
  const auto text_field = [&](const char* name, std::string& out, bool required) {
    if (!json.contains(name)) {
      if (required) {
        throw std::runtime_error("run file '" + path + "' lacks the field \"" + name + "\"");
      }
      return;
    }
    if (!json[name].is_string()) {
      throw std::runtime_error("run file '" + path + "': field \"" + name +
                               "\" must be a string, got " + json[name].dump());
    }
    out = json[name].get<std::string>();
  };
  const auto int_field = [&](const char* name, int64_t& out) {
    if (!json.contains(name)) return;
    if (!json[name].is_number_integer()) {
      throw std::runtime_error("run file '" + path + "': field \"" + name +
                               "\" must be an integer, got " + json[name].dump());
    }
    out = json[name].get<int64_t>();
  };
  text_field("status", data.status, true);
  if (data.status != "running" && !isEndState(data.status)) {
    throw std::runtime_error("run file '" + path + "': status \"" + data.status +
                             "\" is not one of running, finished, stopped, failed");
  }
  text_field("message", data.message, false);
  int_field("tokens_done", data.tokens_done);
  int_field("total_tokens", data.total_tokens);
  int_field("step", data.step);
  int_field("total_steps", data.total_steps);
  text_field("start_time", data.start_time, true);
  text_field("end_time", data.end_time, false);
  text_field("updated_time", data.updated_time, false);
  text_field("app_version", data.app_version, false);
  text_field("libtorch_version", data.libtorch_version, false);
  text_field("hostname", data.hostname, false);
  int_field("pid", data.pid);
  return data;
}

}  // namespace sae
