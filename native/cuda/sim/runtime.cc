// The CUDA simulation's engine and host runtime (see kernel.h and runtime.h for the interface, README.md for the
// model). One launch runs at a time (a process-wide mutex), its blocks one after another; the threads of a block
// are OS threads of a pool that grows to the largest block seen (at most 1024) and lives until the process exits.
// Barriers and warp rendezvous count arrivals under a mutex and wait on a futex word with acquire/release atomics,
// which ThreadSanitizer understands: the happens-before edges it sees are exactly those the kernel's barriers
// create. A wait that lasts longer than
// PACT_SIM_TIMEOUT_S seconds (default 60) is a deadlock on the device too: it is reported and the process aborts.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "cuda/sim/sim.h"

// The linker defines these around the `pact_sim_shared` section that holds every static __shared__ variable.
extern "C" char __start_pact_sim_shared[];
extern "C" char __stop_pact_sim_shared[];

namespace pact::sim {

namespace {

// Limits of an H100 SXM (compute capability 9.0), as cudaGetDeviceProperties reports them.
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDim[3] = {1024, 1024, 64};
constexpr unsigned kMaxGridDim[3] = {2147483647u, 65535, 65535};
constexpr size_t kSharedPerBlock = 48 * 1024;      // without opting in
constexpr size_t kSharedPerBlockOptin = 232448;    // 227 KiB, with cudaFuncAttributeMaxDynamicSharedMemorySize
constexpr size_t kGlobalMemory = 85520809984ull;  // 79.6 GiB
constexpr unsigned char kPoison = 0xFF;           // NaN as float or double, -1 as an integer

// Keeps the section (and so its bounds' symbols) present when no kernel of the binary uses static shared memory.
__attribute__((used, section("pact_sim_shared"))) char sectionAnchor[16];

thread_local cudaError_t lastError = cudaSuccess;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "pact CUDA simulation: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::chrono::seconds timeout() {
  static const std::chrono::seconds t{[] {
    const char* env = std::getenv("PACT_SIM_TIMEOUT_S");
    return env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 60;
  }()};
  return t;
}

// Blocks the calling thread while `word` holds `seen`: a futex wait, so that waking the 256 threads of a block
// costs one system call and no lock hand-over (a condition variable's notify_all makes every woken thread take
// the mutex in turn: measured 50 ms per __syncthreads of 256 threads on a loaded 2-core machine). The acquire
// load that sees the new value is the happens-before edge ThreadSanitizer follows.
void waitWhile(std::atomic<uint32_t>& word, uint32_t seen) {
  while (word.load(std::memory_order_acquire) == seen) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
  }
}

// The same for a wait that a correct kernel ends: past PACT_SIM_TIMEOUT_S it is a deadlock, described by `what()`.
template <typename What>
void waitWhile(std::atomic<uint32_t>& word, uint32_t seen, What what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout();
  while (word.load(std::memory_order_acquire) == seen) {
    timespec slice{0, 100'000'000};
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, &slice, nullptr, 0);
    if (std::chrono::steady_clock::now() > deadline && word.load(std::memory_order_acquire) == seen) {
      fail("deadlock: " + what());
    }
  }
}

void wakeAll(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

std::string dimString(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

// __syncthreads of one block. `expected` drops as threads exit, as on the device, where exited threads no longer
// hold a barrier back. Arrivals count under a mutex; the wait is on `phase_`.
class BlockBarrier {
 public:
  void reset(unsigned threads) {
    expected_ = threads;
    arrived_ = 0;
    trueCount_ = 0;
  }

  int arrive(BarrierOp op, int predicate, const char* file, int line, uint3 block) {
    uint32_t phase;
    {
      std::lock_guard lock(mutex_);
      if (arrived_ == 0) {
        file_ = file;
        line_ = line;
      } else if (line != line_ || std::strcmp(file, file_) != 0) {
        fail("divergent __syncthreads in block " + dimString(block) + ": a thread waits at " + file + ":" +
             std::to_string(line) + " while others wait at " + file_ + ":" + std::to_string(line_) +
             " (undefined behaviour on the device)");
      }
      trueCount_ += predicate != 0;
      ++arrived_;
      phase = phase_.load(std::memory_order_relaxed);
      if (arrived_ == expected_) completeLocked();
    }
    waitWhile(phase_, phase, [&] {
      return "__syncthreads at " + std::string(file) + ":" + std::to_string(line) + " in block " + dimString(block) +
             ": not every live thread of the block arrived";
    });
    // result_ stays valid until every thread has arrived at the next barrier, so after this thread has read it.
    switch (op) {
      case BarrierOp::kCount:
        return result_;
      case BarrierOp::kAnd:
        return result_ == static_cast<int>(resultOf_);
      case BarrierOp::kOr:
        return result_ > 0;
      default:
        return 0;
    }
  }

  void drop() {
    std::lock_guard lock(mutex_);
    --expected_;
    if (arrived_ > 0 && arrived_ == expected_) completeLocked();
  }

 private:
  void completeLocked() {
    result_ = trueCount_;
    resultOf_ = arrived_;
    arrived_ = 0;
    trueCount_ = 0;
    phase_.fetch_add(1, std::memory_order_release);
    wakeAll(phase_);
  }

  std::mutex mutex_;
  std::atomic<uint32_t> phase_{0};
  unsigned expected_ = 0, arrived_ = 0;
  int trueCount_ = 0, result_ = 0;
  unsigned resultOf_ = 0;
  const char* file_ = "";
  int line_ = 0;
};

// The rendezvous of the lanes of one warp for __shfl*_sync, __ballot_sync, __syncwarp, ...: every lane named in the
// mask that exists and has not exited brings a value; each then reads all of them. Lanes with disjoint masks
// (divergent code) meet in separate groups.
class Warp {
 public:
  void reset(unsigned existing) {
    existing_ = existing;
    exited_ = 0;
    groups_.clear();
  }

  WarpValues exchange(unsigned lane, unsigned mask, uint64_t mine, const char* op) {
    const unsigned bit = 1u << lane;
    if ((mask & bit) == 0) {
      fail(std::string(op) + ": lane " + std::to_string(lane) + " is not in its own mask " + std::to_string(mask) +
           " (undefined behaviour on the device)");
    }
    std::unique_lock lock(mutex_);
    auto group = std::find_if(groups_.begin(), groups_.end(), [&](const Group& g) { return g.mask == mask && !g.full; });
    if (group == groups_.end()) group = groups_.insert(groups_.end(), Group{mask});
    group->value[lane] = mine;
    group->arrived |= bit;
    completeIfAllArrived(*group);
    while (!group->full) {
      const uint32_t seen = completions_.load(std::memory_order_relaxed);
      lock.unlock();
      waitWhile(completions_, seen, [&] {
        return std::string(op) + " in block " + dimString(blockIdx) + ": not every live lane of mask " +
               std::to_string(mask) + " arrived";
      });
      lock.lock();
    }
    WarpValues out;
    std::copy(std::begin(group->value), std::end(group->value), std::begin(out.value));
    out.present = group->arrived;
    out.lane = lane;
    group->read |= bit;
    if (group->read == group->arrived) groups_.erase(group);
    return out;
  }

  void exit(unsigned lane) {
    std::lock_guard lock(mutex_);
    exited_ |= 1u << lane;
    for (Group& g : groups_) completeIfAllArrived(g);
  }

  unsigned live() {
    std::lock_guard lock(mutex_);
    return existing_ & ~exited_;
  }

 private:
  struct Group {
    unsigned mask;
    unsigned arrived = 0, read = 0;
    bool full = false;
    uint64_t value[32] = {};
  };

  void completeIfAllArrived(Group& g) {
    if (!g.full && g.arrived != 0 && g.arrived == (g.mask & existing_ & ~exited_)) {
      g.full = true;
      completions_.fetch_add(1, std::memory_order_release);
      wakeAll(completions_);
    }
  }

  std::mutex mutex_;
  std::atomic<uint32_t> completions_{0};
  unsigned existing_ = 0, exited_ = 0;
  std::list<Group> groups_;
};

// The state of the block being run.
struct Block {
  unsigned threads = 0;
  BlockBarrier barrier;
  std::vector<std::unique_ptr<Warp>> warps;
  std::byte* dynamicShared = nullptr;
};

thread_local Block* currentBlock = nullptr;
thread_local unsigned currentThread = 0;

Block& requireBlock(const char* what) {
  if (currentBlock == nullptr) fail(std::string(what) + " called outside a kernel");
  return *currentBlock;
}

// OS threads that run the threads of one block at a time; `run` returns when all of them have finished. Each
// worker has its own go-word, so a block of 32 threads wakes 32 workers, not the whole pool.
class ThreadPool {
 public:
  ~ThreadPool() {
    stop_.store(true, std::memory_order_relaxed);
    for (auto& w : workers_) {
      w->go.fetch_add(1, std::memory_order_release);
      wakeAll(w->go);
    }
    for (auto& w : workers_) w->thread.join();
  }

  void run(unsigned n, const std::function<void(unsigned)>& job) {
    while (workers_.size() < n) {
      auto w = std::make_unique<Worker>();
      Worker& ref = *w;
      const auto index = static_cast<unsigned>(workers_.size());
      w->thread = std::thread([this, &ref, index] { work(ref, index); });
      workers_.push_back(std::move(w));
    }
    job_ = &job;
    running_.store(n, std::memory_order_relaxed);
    for (unsigned i = 0; i < n; ++i) {
      workers_[i]->go.fetch_add(1, std::memory_order_release);
      wakeAll(workers_[i]->go);
    }
    for (uint32_t left; (left = running_.load(std::memory_order_acquire)) != 0;) {
      waitWhile(running_, left);
    }
  }

 private:
  struct Worker {
    std::atomic<uint32_t> go{0};
    std::thread thread;
  };

  void work(Worker& self, unsigned index) {
    for (uint32_t seen = 0;; ++seen) {
      waitWhile(self.go, seen);
      if (stop_.load(std::memory_order_relaxed)) return;
      (*job_)(index);
      if (running_.fetch_sub(1, std::memory_order_acq_rel) == 1) wakeAll(running_);
    }
  }

  std::vector<std::unique_ptr<Worker>> workers_;
  const std::function<void(unsigned)>* job_ = nullptr;
  std::atomic<uint32_t> running_{0};
  std::atomic<bool> stop_{false};
};

// Shared memory is uninitialised at the start of every block on the device. Writing poison through a volatile
// pointer, unsanitized, also covers AddressSanitizer's redzones between the variables without a report.
__attribute__((no_sanitize("address", "thread"))) void poison(char* begin, char* end) {
  for (volatile char* p = begin; p < end; ++p) *p = static_cast<char>(kPoison);
}

struct Allocations {
  std::mutex mutex;
  std::map<uintptr_t, size_t> live;  // base address -> size

  // Whether [p, p + n) lies inside one live allocation.
  bool contains(const void* p, size_t n) {
    std::lock_guard lock(mutex);
    const auto a = reinterpret_cast<uintptr_t>(p);
    auto it = live.upper_bound(a);
    if (it == live.begin()) return false;
    --it;
    return a >= it->first && a - it->first + n <= it->second;
  }
};

Allocations& allocations() {
  static Allocations a;
  return a;
}

std::mutex& launchMutex() {
  static std::mutex m;
  return m;
}

std::map<const void*, size_t>& maxDynamicShared() {
  static std::map<const void*, size_t> m;
  return m;
}

cudaError_t record(cudaError_t error) {
  if (error != cudaSuccess) lastError = error;
  return error;
}

bool deviceHidden() {
  const char* env = std::getenv("PACT_SIM_NO_DEVICE");
  return env != nullptr && env[0] != '\0' && env[0] != '0';
}

}  // namespace

int syncThreads(BarrierOp op, int predicate, const char* file, int line) {
  return requireBlock("__syncthreads").barrier.arrive(op, predicate, file, line, blockIdx);
}

WarpValues warpExchange(unsigned mask, uint64_t mine, const char* op) {
  Block& block = requireBlock(op);
  return block.warps[currentThread / 32]->exchange(currentThread % 32, mask, mine, op);
}

unsigned activeMask() { return requireBlock("__activemask").warps[currentThread / 32]->live(); }

void trap(const char* what) { fail(std::string(what) + " in block " + dimString(blockIdx)); }

void* dynamicSharedMemory() { return requireBlock("extern __shared__").dynamicShared; }

void setLastError(cudaError_t error) { record(error); }

cudaError_t validateLaunch(const void* kernel, dim3 grid, dim3 block, size_t sharedBytes) {
  const unsigned b[3] = {block.x, block.y, block.z};
  const unsigned g[3] = {grid.x, grid.y, grid.z};
  for (int d = 0; d < 3; ++d) {
    if (b[d] == 0 || b[d] > kMaxBlockDim[d] || g[d] == 0 || g[d] > kMaxGridDim[d]) return cudaErrorInvalidConfiguration;
  }
  if (uint64_t{block.x} * block.y * block.z > kMaxThreadsPerBlock) return cudaErrorInvalidConfiguration;
  std::lock_guard lock(launchMutex());
  const auto optin = maxDynamicShared().find(kernel);
  const size_t limit = optin != maxDynamicShared().end() ? optin->second : kSharedPerBlock;
  return sharedBytes > limit ? cudaErrorInvalidValue : cudaSuccess;
}

void runGrid(dim3 grid, dim3 blockDims, size_t sharedBytes, const std::function<void()>& thread) {
  std::lock_guard lock(launchMutex());
  static ThreadPool pool;
  Block block;
  block.threads = blockDims.x * blockDims.y * blockDims.z;
  const unsigned warps = (block.threads + 31) / 32;
  for (unsigned w = 0; w < warps; ++w) block.warps.push_back(std::make_unique<Warp>());
  static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= 16, "dynamic shared memory must be 16-byte aligned");
  const std::unique_ptr<std::byte[]> dynamicShared(new std::byte[sharedBytes]);
  block.dynamicShared = dynamicShared.get();
  uint3 index{0, 0, 0};
  const std::function<void(unsigned)> job = [&](unsigned t) {
    threadIdx = {t % blockDims.x, t / blockDims.x % blockDims.y, t / (blockDims.x * blockDims.y)};
    blockIdx = index;
    blockDim = blockDims;
    gridDim = grid;
    currentBlock = &block;
    currentThread = t;
    thread();
    block.barrier.drop();
    block.warps[t / 32]->exit(t % 32);
    currentBlock = nullptr;
  };
  for (index.z = 0; index.z < grid.z; ++index.z) {
    for (index.y = 0; index.y < grid.y; ++index.y) {
      for (index.x = 0; index.x < grid.x; ++index.x) {
        block.barrier.reset(block.threads);
        for (unsigned w = 0; w < warps; ++w) {
          const unsigned lanes = std::min(32u, block.threads - 32 * w);
          block.warps[w]->reset(lanes == 32 ? ~0u : (1u << lanes) - 1);
        }
        poison(reinterpret_cast<char*>(block.dynamicShared), reinterpret_cast<char*>(block.dynamicShared) + sharedBytes);
        poison(__start_pact_sim_shared, __stop_pact_sim_shared);
        pool.run(block.threads, job);
      }
    }
  }
}

}  // namespace pact::sim

using pact::sim::record;

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = pact::sim::lastError;
  pact::sim::lastError = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return pact::sim::lastError; }

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return record(cudaErrorInvalidValue);
  *count = pact::sim::deviceHidden() ? 0 : 1;
  return *count == 0 ? record(cudaErrorNoDevice) : cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : record(cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "NVIDIA H100 80GB HBM3 (simulated on the CPU)");
  prop->totalGlobalMem = pact::sim::kGlobalMemory;
  prop->sharedMemPerBlock = pact::sim::kSharedPerBlock;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = static_cast<int>(pact::sim::kMaxThreadsPerBlock);
  for (int d = 0; d < 3; ++d) {
    prop->maxThreadsDim[d] = static_cast<int>(pact::sim::kMaxBlockDim[d]);
    prop->maxGridSize[d] = static_cast<int>(pact::sim::kMaxGridDim[d]);
  }
  prop->totalConstMem = 65536;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  prop->memoryBusWidth = 5120;
  prop->l2CacheSize = 52428800;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->sharedMemPerMultiprocessor = 233472;
  prop->regsPerMultiprocessor = 65536;
  prop->sharedMemPerBlockOptin = pact::sim::kSharedPerBlockOptin;
  prop->maxBlocksPerMultiProcessor = 32;
  prop->unifiedAddressing = 1;
  prop->managedMemory = 1;
  prop->concurrentKernels = 1;
  prop->asyncEngineCount = 3;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaDeviceReset() { return cudaSuccess; }

// Device memory is host memory of exactly the requested size, so AddressSanitizer's redzones sit right after the
// last element a kernel may touch.
cudaError_t cudaMalloc(void** devPtr, size_t size) {
  if (devPtr == nullptr) return record(cudaErrorInvalidValue);
  *devPtr = nullptr;
  if (size == 0) return cudaSuccess;
  if (size > pact::sim::kGlobalMemory) return record(cudaErrorMemoryAllocation);
  void* p = ::operator new(size, std::align_val_t{256}, std::nothrow);
  if (p == nullptr) return record(cudaErrorMemoryAllocation);
  auto& a = pact::sim::allocations();
  std::lock_guard lock(a.mutex);
  a.live.emplace(reinterpret_cast<uintptr_t>(p), size);
  *devPtr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* devPtr) {
  if (devPtr == nullptr) return cudaSuccess;
  auto& a = pact::sim::allocations();
  {
    std::lock_guard lock(a.mutex);
    if (a.live.erase(reinterpret_cast<uintptr_t>(devPtr)) == 0) return record(cudaErrorInvalidValue);
  }
  ::operator delete(devPtr, std::align_val_t{256});
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (ptr == nullptr) return record(cudaErrorInvalidValue);
  *ptr = ::operator new(size, std::align_val_t{256}, std::nothrow);
  return *ptr == nullptr && size != 0 ? record(cudaErrorMemoryAllocation) : cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  ::operator delete(ptr, std::align_val_t{256});
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return record(cudaErrorInvalidMemcpyDirection);
  if (count == 0) return cudaSuccess;
  auto& a = pact::sim::allocations();
  const bool dstDevice = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool srcDevice = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst == nullptr || src == nullptr || (dstDevice && !a.contains(dst, count)) ||
      (srcDevice && !a.contains(src, count))) {
    return record(cudaErrorInvalidValue);
  }
  std::memcpy(dst, src, count);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, count, kind);
}

cudaError_t cudaMemset(void* devPtr, int value, size_t count) {
  if (count == 0) return cudaSuccess;
  if (!pact::sim::allocations().contains(devPtr, count)) return record(cudaErrorInvalidValue);
  std::memset(devPtr, value, count);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t) {
  return cudaMemset(devPtr, value, count);
}

struct CUstream_st {};
struct CUevent_st {
  std::chrono::steady_clock::time_point at{};
  bool recorded = false;
};

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  if (stream == nullptr) return record(cudaErrorInvalidValue);
  *stream = new CUstream_st;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) { return cudaStreamCreate(stream); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream == nullptr) return record(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  if (event == nullptr) return record(cudaErrorInvalidValue);
  *event = new CUevent_st;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr) return record(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (event == nullptr) return record(cudaErrorInvalidResourceHandle);
  event->at = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event == nullptr ? record(cudaErrorInvalidResourceHandle) : cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return record(cudaErrorInvalidValue);
  if (start == nullptr || end == nullptr || !start->recorded || !end->recorded) {
    return record(cudaErrorInvalidResourceHandle);
  }
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (func == nullptr) return record(cudaErrorInvalidDeviceFunction);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<size_t>(value) > pact::sim::kSharedPerBlockOptin) {
    return record(cudaErrorInvalidValue);
  }
  std::lock_guard lock(pact::sim::launchMutex());
  pact::sim::maxDynamicShared()[func] = static_cast<size_t>(value);
  return cudaSuccess;
}
