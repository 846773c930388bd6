// The .kiln file, format v1:
//   0   8 bytes  magic "KILNENG\0"
//   8   u32      format version
//   12  u32      reserved (0)
//   16  u64      manifest length M
//   24  M bytes  manifest JSON: kiln version, backend, precision, compatibility, I/O, profiles, sections
//   ..  sections, each at the offset/size the manifest lists (graph: ONNX ModelProto; weights: raw, aligned)
//   end u64      checksum of every byte before it: the manifest's "checksum" names it ("fnv1a64x4"); files
//                without that key use byte-wise FNV-1a 64
// All integers little-endian. Loading checks size, magic, version, checksum, then the backend.
#pragma once
#include <string>
#include <string_view>

#include "engine/engine_state.h"
#include "util/content_hash.h"

namespace kiln::engine_file {

inline constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '\0'};
inline constexpr uint32_t kFormatVersion = 1;
// A bundle (several engines of one model, kiln build --bundle): the same container, the manifest's "members"
// each naming its graph section ("graph.K"), one shared "weights" section.
inline constexpr uint32_t kBundleFormatVersion = 2;

Result<std::string> serialize(const EngineState& state);
Result<EngineState> deserialize(std::string_view bytes);
inline constexpr const char* kChecksum = "fnv1a64x4";
using kiln::fnv1a64;    // byte-wise FNV-1a 64: files without a "checksum" key
using kiln::fnv1a64x4;  // four lanes of 8-byte words (kChecksum)

}  // namespace kiln::engine_file
