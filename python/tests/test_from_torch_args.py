"""from_torch's argument handling, which needs no torch (test_torch.py runs the real thing)."""

import importlib.util

import pytest

import kiln
from kiln.torch_bridge import _dynamic_axes, _input_names


def test_dynamic_shapes_forms():
    names = ["ids", "mask"]
    assert _dynamic_axes(None, names) == {}
    assert _dynamic_axes(True, names) == {"ids": {0: "batch"}, "mask": {0: "batch"}}
    assert _dynamic_axes({0: {0: "batch", 1: "seq"}, "mask": {0: "batch"}}, names) == {
        "ids": {0: "batch", 1: "seq"}, "mask": {0: "batch"}}
    assert _dynamic_axes([[0], None], names) == {"ids": {0: "ids_dim0"}}

    class Dim:  # stands in for torch.export.Dim, which is named by __name__
        __name__ = "tokens"

    assert _dynamic_axes({"ids": {1: Dim()}}, names) == {"ids": {1: "tokens"}}
    with pytest.raises(kiln.InvalidArgument, match="'labels', which is not an input"):
        _dynamic_axes({"labels": {0: "batch"}}, names)
    with pytest.raises(kiln.InvalidArgument, match="dynamic_shapes must be a dict"):
        _dynamic_axes("batch", names)


def test_input_names_from_forward():
    class Net:
        def forward(self, image, mask=None):
            return image

    assert _input_names(Net(), 1, None) == ["image"]
    assert _input_names(Net(), 2, None) == ["image", "mask"]
    assert _input_names(Net(), 3, None) == ["input_0", "input_1", "input_2"]
    assert _input_names(Net(), 1, ["x"]) == ["x"]
    with pytest.raises(kiln.InvalidArgument, match="2 names for 1 example inputs"):
        _input_names(Net(), 1, ["x", "y"])


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed here")
def test_without_torch_says_so():
    with pytest.raises(kiln.InvalidArgument, match="needs torch"):
        kiln.from_torch(object(), ())
