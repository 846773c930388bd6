// Real model graphs without their weights (tests/data/skeletons, written on the GPU machine by
// bench/skeleton.py): every node and small constant of the exported model, large weights left empty.
// load_skeleton fills the empty weights with small deterministic values so the model builds and runs.
#pragma once
#include <string>

namespace kiln::testing {

// Serialized ModelProto of tests/data/skeletons/NAME.skel.onnx with weights filled (seeded, in [-0.05, 0.05)).
std::string load_skeleton(const std::string& name);

}  // namespace kiln::testing
