// A C API over PyTorch's c10d process group, for the Rust side of `src/distributed/` (docs/DISTRIBUTED.md).
//
// A group is a TCPStore (client or server) under a prefix, and a ProcessGroupGloo over it. Every function catches
// every C++ exception and reports it through `error` (a malloc'd string the caller frees), so nothing unwinds into
// Rust. The tensors are tch's: each `void*` is an `at::Tensor*`.
//
// Gloo's own types appear only behind `std::shared_ptr<gloo::transport::Device>`, created and consumed by libtorch:
// the gloo headers this file compiles against (Debian's libgloo-dev, see scripts/setup.sh) need not match the gloo
// compiled into libtorch in anything but that pointer.

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  std::chrono::milliseconds timeout;
};

void report(char** error, const std::string& message) {
  if (error == nullptr) return;
  *error = static_cast<char*>(std::malloc(message.size() + 1));
  if (*error != nullptr) std::memcpy(*error, message.c_str(), message.size() + 1);
}

// Runs `body`, turning any exception into `error`; returns whether it succeeded.
template <typename Body>
bool guarded(char** error, Body body) {
  try {
    body();
    return true;
  } catch (const c10::Error& e) {
    report(error, e.what_without_backtrace());
  } catch (const std::exception& e) {
    report(error, e.what());
  } catch (...) {
    report(error, "unknown C++ exception");
  }
  return false;
}

std::vector<at::Tensor> tensors_of(void** tensors, size_t count) {
  std::vector<at::Tensor> list;
  list.reserve(count);
  for (size_t i = 0; i < count; ++i) list.push_back(*static_cast<at::Tensor*>(tensors[i]));
  return list;
}

// Waits for `work`, which throws when a peer failed or the timeout passed.
void finish(const c10::intrusive_ptr<c10d::Work>& work, std::chrono::milliseconds timeout) {
  if (!work->wait(timeout)) throw std::runtime_error("the collective did not finish in time");
}

}  // namespace

extern "C" {

// Joins the group of `world` processes as `rank`: connects to the TCPStore at host:port (or hosts it, when
// `host_store`), under the key prefix `prefix`, then creates the Gloo group on the devices of `interfaces`
// (comma-separated network interfaces, as GLOO_SOCKET_IFNAME) or on the default device. Every wait is bounded by
// `timeout_ms`. Null on failure.
void* spidernet_group_gloo(const char* host, uint16_t port, int rank, int world, bool host_store, const char* prefix,
                           const char* interfaces, int64_t timeout_ms, char** error) {
  Group* created = nullptr;
  guarded(error, [&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = port;
    options.isServer = host_store;
    options.numWorkers = world;
    options.waitWorkers = host_store;
    options.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
    auto store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    std::string names(interfaces == nullptr ? "" : interfaces);
    if (names.empty()) {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    } else {
      std::stringstream list(names);
      std::string name;
      while (std::getline(list, name, ',')) {
        if (!name.empty()) gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      }
    }
    auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, gloo_options);
    created = new Group{store, gloo, timeout};
  });
  return created;
}

// Leaves the group.
void spidernet_group_free(void* group) {
  try {
    delete static_cast<Group*>(group);
  } catch (...) {
  }
}

// Sums (op 0) or takes the maximum (op 1) of each of `count` tensors across the group, in place.
bool spidernet_all_reduce(void* group, void** tensors, size_t count, int op, char** error) {
  return guarded(error, [&] {
    auto* g = static_cast<Group*>(group);
    c10d::AllreduceOptions options;
    options.reduceOp = op == 1 ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    options.timeout = g->timeout;
    auto list = tensors_of(tensors, count);
    for (auto& tensor : list) {
      std::vector<at::Tensor> one{tensor};
      finish(g->gloo->allreduce(one, options), g->timeout);
    }
  });
}

// Overwrites each of `count` tensors with `root`'s.
bool spidernet_broadcast(void* group, void** tensors, size_t count, int root, char** error) {
  return guarded(error, [&] {
    auto* g = static_cast<Group*>(group);
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.timeout = g->timeout;
    auto list = tensors_of(tensors, count);
    for (auto& tensor : list) {
      std::vector<at::Tensor> one{tensor};
      finish(g->gloo->broadcast(one, options), g->timeout);
    }
  });
}

// Gathers every rank's `input` into `outputs` (one tensor per rank, each shaped as `input`).
bool spidernet_all_gather(void* group, void* input, void** outputs, size_t world, char** error) {
  return guarded(error, [&] {
    auto* g = static_cast<Group*>(group);
    c10d::AllgatherOptions options;
    options.timeout = g->timeout;
    std::vector<at::Tensor> inputs{*static_cast<at::Tensor*>(input)};
    std::vector<std::vector<at::Tensor>> gathered{tensors_of(outputs, world)};
    finish(g->gloo->allgather(gathered, inputs, options), g->timeout);
  });
}

// Returns when every rank has called it.
bool spidernet_barrier(void* group, char** error) {
  return guarded(error, [&] {
    auto* g = static_cast<Group*>(group);
    c10d::BarrierOptions options;
    options.timeout = g->timeout;
    finish(g->gloo->barrier(options), g->timeout);
  });
}

}  // extern "C"
