// The part of cuDNN 9's C API that the dense convolutions use (cudnn_conv.cc), declared here so that every CUDA
// build compiles that path: cuDNN is loaded at run time (dlopen) where it exists, and a machine or build without it
// runs our own kernels. The values and layouts are cuDNN 9's (cudnn_graph.h, cudnn_ops.h, cudnn_cnn.h);
// cudnn_api_check.cc compares them with the real header wherever CMake finds one.
#pragma once
#include <cstddef>

namespace pact::cudnn_api {

using Handle = struct cudnnContext*;
using TensorDescriptor = struct cudnnTensorStruct*;
using FilterDescriptor = struct cudnnFilterStruct*;
using ConvolutionDescriptor = struct cudnnConvolutionStruct*;
using Stream = struct CUstream_st*;  // cudaStream_t

using Status = int;  // cudnnStatus_t
constexpr Status kStatusSuccess = 0;
using DataType = int;  // cudnnDataType_t
constexpr DataType kDataFloat = 0;
using TensorFormat = int;  // cudnnTensorFormat_t
constexpr TensorFormat kTensorNhwc = 1;
using ConvolutionMode = int;  // cudnnConvolutionMode_t
constexpr ConvolutionMode kCrossCorrelation = 1;
using MathType = int;  // cudnnMathType_t
constexpr MathType kFmaMath = 3;  // FMA only: no TF32 tensor cores, float32 accuracy
using Algo = int;                 // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
using Determinism = int;          // cudnnDeterminism_t

// cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t: the three share this layout.
struct AlgoPerf {
  Algo algo;
  Status status;
  float time;
  size_t memory;
  Determinism determinism;
  MathType mathType;
  int reserved[3];
};

using GetVersionFn = size_t (*)();
using GetErrorStringFn = const char* (*)(Status);
using CreateFn = Status (*)(Handle*);
using DestroyFn = Status (*)(Handle);
using SetStreamFn = Status (*)(Handle, Stream);
using CreateTensorDescriptorFn = Status (*)(TensorDescriptor*);
using SetTensor4dDescriptorFn = Status (*)(TensorDescriptor, TensorFormat, DataType, int, int, int, int);
using DestroyTensorDescriptorFn = Status (*)(TensorDescriptor);
using CreateFilterDescriptorFn = Status (*)(FilterDescriptor*);
using SetFilter4dDescriptorFn = Status (*)(FilterDescriptor, DataType, TensorFormat, int, int, int, int);
using DestroyFilterDescriptorFn = Status (*)(FilterDescriptor);
using CreateConvolutionDescriptorFn = Status (*)(ConvolutionDescriptor*);
using SetConvolution2dDescriptorFn = Status (*)(ConvolutionDescriptor, int, int, int, int, int, int, ConvolutionMode,
                                               DataType);
using SetConvolutionMathTypeFn = Status (*)(ConvolutionDescriptor, MathType);
using DestroyConvolutionDescriptorFn = Status (*)(ConvolutionDescriptor);
// Find*(handle, the two operands' descriptors in the op's order, conv, the result's descriptor, requested,
// returned, results).
using FindForwardFn = Status (*)(Handle, TensorDescriptor, FilterDescriptor, ConvolutionDescriptor, TensorDescriptor,
                                 int, int*, AlgoPerf*);
using FindBackwardDataFn = Status (*)(Handle, FilterDescriptor, TensorDescriptor, ConvolutionDescriptor,
                                      TensorDescriptor, int, int*, AlgoPerf*);
using FindBackwardFilterFn = Status (*)(Handle, TensorDescriptor, TensorDescriptor, ConvolutionDescriptor,
                                        FilterDescriptor, int, int*, AlgoPerf*);
// (handle, alpha, aDesc, a, bDesc, b, conv, algo, workspace, workspaceBytes, beta, outDesc, out)
using ForwardFn = Status (*)(Handle, const void*, TensorDescriptor, const void*, FilterDescriptor, const void*,
                             ConvolutionDescriptor, Algo, void*, size_t, const void*, TensorDescriptor, void*);
using BackwardDataFn = Status (*)(Handle, const void*, FilterDescriptor, const void*, TensorDescriptor, const void*,
                                  ConvolutionDescriptor, Algo, void*, size_t, const void*, TensorDescriptor, void*);
using BackwardFilterFn = Status (*)(Handle, const void*, TensorDescriptor, const void*, TensorDescriptor, const void*,
                                    ConvolutionDescriptor, Algo, void*, size_t, const void*, FilterDescriptor, void*);

// The exported symbol names, in the order of Api's members.
#define PACT_CUDNN_FUNCTIONS(X)                                              \
  X(GetVersion, cudnnGetVersion)                                             \
  X(GetErrorString, cudnnGetErrorString)                                     \
  X(Create, cudnnCreate)                                                     \
  X(Destroy, cudnnDestroy)                                                   \
  X(SetStream, cudnnSetStream)                                               \
  X(CreateTensorDescriptor, cudnnCreateTensorDescriptor)                     \
  X(SetTensor4dDescriptor, cudnnSetTensor4dDescriptor)                       \
  X(DestroyTensorDescriptor, cudnnDestroyTensorDescriptor)                   \
  X(CreateFilterDescriptor, cudnnCreateFilterDescriptor)                     \
  X(SetFilter4dDescriptor, cudnnSetFilter4dDescriptor)                       \
  X(DestroyFilterDescriptor, cudnnDestroyFilterDescriptor)                   \
  X(CreateConvolutionDescriptor, cudnnCreateConvolutionDescriptor)           \
  X(SetConvolution2dDescriptor, cudnnSetConvolution2dDescriptor)             \
  X(SetConvolutionMathType, cudnnSetConvolutionMathType)                     \
  X(DestroyConvolutionDescriptor, cudnnDestroyConvolutionDescriptor)         \
  X(FindForward, cudnnFindConvolutionForwardAlgorithm)                       \
  X(FindBackwardData, cudnnFindConvolutionBackwardDataAlgorithm)             \
  X(FindBackwardFilter, cudnnFindConvolutionBackwardFilterAlgorithm)         \
  X(Forward, cudnnConvolutionForward)                                        \
  X(BackwardData, cudnnConvolutionBackwardData)                              \
  X(BackwardFilter, cudnnConvolutionBackwardFilter)

struct Api {
#define PACT_CUDNN_MEMBER(name, symbol) name##Fn name = nullptr;
  PACT_CUDNN_FUNCTIONS(PACT_CUDNN_MEMBER)
#undef PACT_CUDNN_MEMBER
};

}  // namespace pact::cudnn_api
