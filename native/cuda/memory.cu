// The pact-cuda backend's caching allocator and buffer table (memory.cuh).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda/launch.h"
#include "cuda/memory.cuh"

namespace pact::cuda {

namespace {

constexpr size_t kSmallRound = 512;
constexpr size_t kLarge = size_t{1} << 20;
constexpr size_t kLargeRound = size_t{2} << 20;

struct InlineBytes {
  unsigned char bytes[kInlineWriteBytes];
};

__global__ void inlineWriteKernel(InlineBytes src, int n, unsigned char* dst) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src.bytes[i];
}

}  // namespace

void writeToDevice(void* dst, const void* src, size_t bytes) {
  auto* out = static_cast<unsigned char*>(dst);
  const auto* in = static_cast<const unsigned char*>(src);
  if (bytes > kInlineWriteLimit) {
    const cudaError_t err = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error(std::string("cudaMemcpy failed: ") + cudaGetErrorString(err));
    }
    return;
  }
  for (size_t at = 0; at < bytes; at += kInlineWriteBytes) {
    InlineBytes chunk;
    const size_t n = std::min(kInlineWriteBytes, bytes - at);
    std::memcpy(chunk.bytes, in + at, n);
    PACT_LAUNCH(inlineWriteKernel, 1, 256, 0, nullptr, chunk, static_cast<int>(n), out + at);
    checkLaunch("inlineWriteKernel");
  }
}

size_t CachingAllocator::roundUp(size_t bytes) {
  const size_t unit = bytes > kLarge ? kLargeRound : kSmallRound;
  return (bytes + unit - 1) / unit * unit;
}

CachingAllocator::~CachingAllocator() {
  emptyCache();
  for (auto& [block, live] : live_) cudaFree(block);
}

void* CachingAllocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = roundUp(bytes);
  auto it = cache_.lower_bound(size);
  void* block = nullptr;
  size_t blockBytes = size;
  if (it != cache_.end() && it->first <= 2 * size) {
    blockBytes = it->first;
    block = it->second;
    cache_.erase(it);
  } else {
    cudaError_t err = cudaMalloc(&block, size);
    if (err != cudaSuccess) {
      cudaGetLastError();
      emptyCache();
      err = cudaMalloc(&block, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("cudaMalloc of " + std::to_string(size) + " bytes failed: " + cudaGetErrorString(err) +
                               " (" + std::to_string(stats_.bytesInUse) + " bytes in use)");
    }
    stats_.bytesReserved += size;
    ++stats_.deviceAllocations;
  }
  live_[block] = {blockBytes, bytes};
  stats_.bytesInUse += bytes;
  ++stats_.buffers;
  if (stats_.bytesInUse > stats_.peakBytesInUse) stats_.peakBytesInUse = stats_.bytesInUse;
  return block;
}

void CachingAllocator::release(void* block) {
  if (block == nullptr) return;
  auto it = live_.find(block);
  if (it == live_.end()) throw std::logic_error("CachingAllocator::release: not a live block");
  stats_.bytesInUse -= it->second.requested;
  --stats_.buffers;
  cache_.emplace(it->second.blockBytes, block);
  live_.erase(it);
}

void CachingAllocator::emptyCache() {
  for (auto& [bytes, block] : cache_) {
    cudaFree(block);
    stats_.bytesReserved -= bytes;
  }
  cache_.clear();
}

uint64_t BufferTable::create(size_t bytes) {
  if (next_ > (uint64_t{1} << 53)) throw std::runtime_error("device buffer ids exhausted (2^53 buffers created)");
  void* data = allocator_.allocate(bytes);
  const uint64_t id = next_++;
  buffers_[id] = {data, bytes};
  return id;
}

const BufferTable::Buffer& BufferTable::get(uint64_t id) const {
  auto it = buffers_.find(id);
  if (it == buffers_.end()) throw std::invalid_argument("no live device buffer with id " + std::to_string(id));
  return it->second;
}

void BufferTable::destroy(uint64_t id) {
  const Buffer buffer = get(id);
  allocator_.release(buffer.data);
  buffers_.erase(id);
}

BufferTable& BufferTable::instance() {
  // Never destroyed: at process exit the CUDA runtime may already be torn down (static destruction order across
  // libraries is unspecified), and the driver reclaims the process's device memory anyway.
  static auto* table = new BufferTable();
  return *table;
}

}  // namespace pact::cuda
