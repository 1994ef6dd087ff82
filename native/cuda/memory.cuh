// Device memory of the pact-cuda backend: a caching allocator and a table of buffers addressed by integer ids, so
// that JavaScript never holds a raw device pointer (an unknown or freed id is an Error, not a crash).
//
// The allocator keeps freed blocks and reuses one for a later request that fits it without wasting more than half
// of it (sizes rounded up to 512 bytes, and to 2 MiB above 1 MiB, as PyTorch's CUDA caching allocator does), so a
// training step's many same-sized temporaries cost no cudaMalloc/cudaFree after the first step. When cudaMalloc
// fails it empties the cache and tries once more. Not thread-safe: the backend calls it from the JS thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>

namespace pact::cuda {

struct MemoryStats {
  size_t bytesInUse = 0;       // requested sizes of live buffers
  size_t bytesReserved = 0;    // held from cudaMalloc: live blocks plus the cache
  size_t peakBytesInUse = 0;
  size_t buffers = 0;          // live buffers
  size_t deviceAllocations = 0;  // cudaMalloc calls so far
};

class CachingAllocator {
 public:
  CachingAllocator() = default;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;
  ~CachingAllocator();

  // A device block of at least `bytes` (nullptr for 0). Throws std::runtime_error when the device has no room.
  void* allocate(size_t bytes);
  // Returns a block from allocate() to the cache; nullptr is ignored.
  void release(void* block);
  // cudaFree of every cached block.
  void emptyCache();
  MemoryStats stats() const { return stats_; }

  static size_t roundUp(size_t bytes);

 private:
  struct Live {
    size_t blockBytes;
    size_t requested;
  };
  std::multimap<size_t, void*> cache_;
  std::unordered_map<void*, Live> live_;
  MemoryStats stats_;
};

// The buffers of the backend: id -> (block, size). Ids start at 1 and are never reused while a process runs: 64-bit,
// handed to JavaScript as numbers, exact up to 2^53 (32-bit ids wrapped after 2^32 buffers, about a day of training,
// and then overwrote live entries).
class BufferTable {
 public:
  struct Buffer {
    void* data;
    size_t bytes;
  };

  uint64_t create(size_t bytes);
  // The live buffer `id`; throws std::invalid_argument naming the id when there is none.
  const Buffer& get(uint64_t id) const;
  void destroy(uint64_t id);
  CachingAllocator& allocator() { return allocator_; }

  static BufferTable& instance();

 private:
  CachingAllocator allocator_;
  std::unordered_map<uint64_t, Buffer> buffers_;
  uint64_t next_ = 1;
};

// Copies `bytes` host bytes to device memory at `dst` in launch order, without waiting for the kernels queued before
// (a cudaMemcpy from pageable memory waits for all of them, so every scalar a training step makes would stall the
// host until the device is idle): up to kInlineWriteLimit bytes travel inside kernel arguments, kInlineWriteBytes a
// launch; the caller's array may change as soon as this returns. Larger copies use cudaMemcpy. Throws
// std::runtime_error when a launch or copy fails.
constexpr size_t kInlineWriteBytes = 2048;
constexpr size_t kInlineWriteLimit = 8 * kInlineWriteBytes;
void writeToDevice(void* dst, const void* src, size_t bytes);

// Temporary device memory of one launcher (partial sums, active lists), taken from the backend's caching allocator
// and given back to its cache when the object goes: a later request may reuse the block at once, which is safe
// because every kernel runs on the one (null) stream, in launch order. Like the allocator, for the JS thread only.
class Scratch {
 public:
  explicit Scratch(size_t bytes) : data_(BufferTable::instance().allocator().allocate(bytes)) {}
  ~Scratch() { BufferTable::instance().allocator().release(data_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void* data_;
};

}  // namespace pact::cuda
