// Registry of the addon's exported functions. Each binding file registers its functions with
// PACT_EXPORT at static-initialisation time, so adding a kernel never edits a central list.
#pragma once
#include <napi.h>

#include <utility>
#include <vector>

namespace pact {

using ExportFn = Napi::Value (*)(const Napi::CallbackInfo&);

inline std::vector<std::pair<const char*, ExportFn>>& exportRegistry() {
  static std::vector<std::pair<const char*, ExportFn>> registry;
  return registry;
}

struct ExportRegistrar {
  ExportRegistrar(const char* name, ExportFn fn) { exportRegistry().emplace_back(name, fn); }
};

}  // namespace pact

#define PACT_CONCAT_INNER(a, b) a##b
#define PACT_CONCAT(a, b) PACT_CONCAT_INNER(a, b)
#define PACT_EXPORT(name, fn) \
  static ::pact::ExportRegistrar PACT_CONCAT(pactExportRegistrar_, __LINE__)(name, fn)
