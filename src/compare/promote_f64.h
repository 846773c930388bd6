// Rewrites a graph to compute in f64 where it computes in f32, for kiln compare's f64 reference.
#pragma once
#include "ir/graph.h"

namespace kiln::compare {

// f32 initializers, constants (Constant, ConstantOfShape values), value dtypes and the float targets of
// Cast/EyeLike/Random* become f64, subgraphs included. Graph inputs are declared f64: callers convert f32
// input data before running.
void promote_to_f64(ir::Graph& g);

}  // namespace kiln::compare
