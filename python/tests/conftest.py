"""Shared fixtures: engines of the models shipped in models/ (see scripts/make_models.py), on the CPU backend."""

import os
import pathlib

import numpy as np
import pytest

import kiln

REPO = pathlib.Path(os.environ.get("KILN_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
MODELS = REPO / "models"
CNN_SHAPES = {"image": [(1, 3, 32, 32), (4, 3, 32, 32), (8, 3, 32, 32)]}


def model_path(name: str) -> str:
    return str(MODELS / f"{name}.onnx")


def reference(name: str):
    """The shipped input and its float64-reference output."""
    return np.load(MODELS / f"{name}.input.npy"), np.load(MODELS / f"{name}.expected.npy")


@pytest.fixture(scope="session")
def cnn_engine() -> kiln.Engine:
    return kiln.build(model_path("tiny_cnn"), backend="cpu", shapes=CNN_SHAPES, progress=False)


@pytest.fixture(scope="session")
def attention_engine() -> kiln.Engine:
    return kiln.build(model_path("tiny_attention"), backend="cpu", progress=False)
