// Argument unwrapping for the N-API layer. Every exported function checks its arguments here again
// (TypeScript checked them first): a wrong type, length or shape throws a JS Error naming the function
// and argument, never reaches a kernel.
#pragma once
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace pact {

struct FloatView {
  float* data;
  size_t length;
};

struct IntView {
  int32_t* data;
  size_t length;
};

[[noreturn]] inline void throwArg(const Napi::Env& env, const char* fn, const std::string& msg) {
  throw Napi::Error::New(env, std::string(fn) + ": " + msg);
}

inline FloatView floatArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throwArg(info.Env(), fn, std::string(name) + " must be a Float32Array");
  }
  auto a = info[i].As<Napi::Float32Array>();
  return {a.Data(), a.ElementLength()};
}

inline IntView int32Arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throwArg(info.Env(), fn, std::string(name) + " must be an Int32Array");
  }
  auto a = info[i].As<Napi::Int32Array>();
  return {a.Data(), a.ElementLength()};
}

// A named byte range of an argument, for checkDisjoint (a null `data` is skipped).
struct Span {
  const char* name;
  const void* data;
  size_t bytes;
};
inline Span span(const char* name, const FloatView& v) { return {name, v.data, v.length * sizeof(float)}; }
inline Span span(const char* name, const IntView& v) { return {name, v.data, v.length * sizeof(int32_t)}; }

// Throws unless every output shares no byte with an input or with another output (views of one ArrayBuffer can
// overlap): the kernels read inputs after writing outputs, and write each output on its own, so an overlap would give
// wrong results silently.
inline void checkDisjoint(const Napi::CallbackInfo& info, const char* fn, std::initializer_list<Span> outputs,
                          std::initializer_list<Span> inputs) {
  const auto overlap = [](const Span& a, const Span& b) {
    const auto* pa = static_cast<const char*>(a.data);
    const auto* pb = static_cast<const char*>(b.data);
    return pa != nullptr && pb != nullptr && a.bytes > 0 && b.bytes > 0 && pa < pb + b.bytes && pb < pa + a.bytes;
  };
  for (auto out = outputs.begin(); out != outputs.end(); ++out) {
    for (const Span& in : inputs) {
      if (overlap(*out, in)) throwArg(info.Env(), fn, std::string(out->name) + " must not overlap " + in.name);
    }
    for (auto other = outputs.begin(); other != out; ++other) {
      if (overlap(*out, *other)) throwArg(info.Env(), fn, std::string(out->name) + " must not overlap " + other->name);
    }
  }
}

// Throws unless the output `out` shares no element with any input (data, length); null inputs are skipped: the
// single-output form of checkDisjoint, its message "<out> must not overlap an input".
inline void checkNoOverlap(const Napi::CallbackInfo& info, const char* fn, const FloatView& out, const char* outName,
                           std::initializer_list<std::pair<const float*, size_t>> inputs) {
  for (const auto& [data, length] : inputs) {
    checkDisjoint(info, fn, {span(outName, out)}, {Span{"an input", data, length * sizeof(float)}});
  }
}

inline FloatView floatArgOfLength(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                                  size_t expected) {
  FloatView v = floatArg(info, i, fn, name);
  if (v.length != expected) {
    throwArg(info.Env(), fn,
             std::string(name) + " must have " + std::to_string(expected) + " elements, got " +
                 std::to_string(v.length));
  }
  return v;
}

inline int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, int64_t min,
                      int64_t max) {
  if (i >= info.Length() || !info[i].IsNumber()) throwArg(info.Env(), fn, std::string(name) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(min) ||
      d > static_cast<double>(max)) {
    throwArg(info.Env(), fn,
             std::string(name) + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                 "], got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

inline double numberArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) throwArg(info.Env(), fn, std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

inline bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean()) throwArg(info.Env(), fn, std::string(name) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// A shape given as a JS array of non-negative integers (at most maxRank entries).
inline std::vector<int64_t> shapeArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                                     size_t maxRank = 8) {
  if (i >= info.Length() || !info[i].IsArray()) throwArg(info.Env(), fn, std::string(name) + " must be an array");
  auto arr = info[i].As<Napi::Array>();
  if (arr.Length() > maxRank) {
    throwArg(info.Env(), fn, std::string(name) + " must have at most " + std::to_string(maxRank) + " entries");
  }
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr[k];
    if (!v.IsNumber()) throwArg(info.Env(), fn, std::string(name) + " must contain numbers");
    double d = v.As<Napi::Number>().DoubleValue();
    if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d)) || d > 1e12) {
      throwArg(info.Env(), fn, std::string(name) + " must contain non-negative integers");
    }
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

// The largest element count a tensor may have here: 2^48, far above what a process can hold, so that no product of
// a tensor's dimensions (the kernels' index arithmetic included) overflows int64.
constexpr uint64_t kMaxTensorElements = uint64_t{1} << 48;

// The element count of a tensor of dimensions `dims` (non-negative); throws naming `name` when the product of its
// non-zero dimensions exceeds kMaxTensorElements (a zero dimension empties the tensor, but a kernel may still multiply
// the others).
template <typename Dims>
inline size_t checkedElementCount(const Napi::Env& env, const char* fn, const std::string& name, const Dims& dims) {
  uint64_t bound = 1, count = 1;
  for (int64_t d : dims) {
    const uint64_t u = static_cast<uint64_t>(d);
    if (d < 0 || __builtin_mul_overflow(bound, u == 0 ? 1 : u, &bound) || bound > kMaxTensorElements) {
      throwArg(env, fn, name + " is too large: its dimensions' product must be at most 2^48");
    }
    count *= u;
  }
  return static_cast<size_t>(count);
}
inline size_t checkedElementCount(const Napi::Env& env, const char* fn, const std::string& name,
                                  std::initializer_list<int64_t> dims) {
  return checkedElementCount<std::initializer_list<int64_t>>(env, fn, name, dims);
}

// The element count of a shape from shapeArg, checked as above.
inline size_t shapeSize(const Napi::CallbackInfo& info, const char* fn, const char* name,
                        const std::vector<int64_t>& shape) {
  return checkedElementCount(info.Env(), fn, name, shape);
}

}  // namespace pact
