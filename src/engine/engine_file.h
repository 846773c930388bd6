// The .kiln file, format v1:
//   0   8 bytes  magic "KILNENG\0"
//   8   u32      format version
//   12  u32      reserved (0)
//   16  u64      manifest length M
//   24  M bytes  manifest JSON: kiln version, backend, precision, compatibility, I/O, profiles, sections
//   ..  sections, each at the offset/size the manifest lists (graph: ONNX ModelProto; weights: raw, aligned)
//   end u64      FNV-1a 64 checksum of every byte before it
// All integers little-endian. Loading checks size, magic, version, checksum, then the backend.
#pragma once
#include <string>
#include <string_view>

#include "runtime/engine_state.h"

namespace kiln::engine_file {

inline constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '\0'};
inline constexpr uint32_t kFormatVersion = 1;

Result<std::string> serialize(const EngineState& state);
Result<EngineState> deserialize(std::string_view bytes);
uint64_t fnv1a64(std::string_view bytes);

}  // namespace kiln::engine_file
