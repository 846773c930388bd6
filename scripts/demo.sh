#!/usr/bin/env bash
# kiln's main job end to end on a model that ships in the repo: build an engine, run it, print outputs and
# timing. Uses the GPU when kiln has a usable CUDA backend there, else the CPU backend, and says which.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
KILN=build/bin/kiln
"$KILN" build models/tiny_cnn.onnx -o build/tiny_cnn.kiln --shapes image:1x3x32x32,8x3x32x32,32x3x32x32
"$KILN" run build/tiny_cnn.kiln --input image=models/tiny_cnn.input.npy --iterations 20
