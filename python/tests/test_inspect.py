"""kiln.inspect: the document of `kiln inspect --json`, for a model and for an engine."""

import pytest

import kiln
from conftest import CNN_SHAPES, model_path


def test_a_model_has_its_io_and_ops():
    j = kiln.inspect(model_path("tiny_cnn"))
    assert j["kind"] == "onnx model"
    assert [i["name"] for i in j["inputs"]] == ["image"]
    assert j["ops"]["Conv"] > 0
    assert "layers" not in j


def test_an_engine_has_layers_and_a_memory_plan_at_the_shapes_given(cnn_engine, tmp_path):
    path = tmp_path / "cnn.kiln"
    cnn_engine.save(path)
    j = kiln.inspect(path, shapes=CNN_SHAPES, svg=tmp_path / "g.svg")
    assert j["kind"] == "kiln engine" and j["backend"] == "cpu"
    assert len(j["layers"]) > 0
    points = j["memory"]["points"]
    assert [p["point"] for p in points] == ["min", "opt", "max"]
    assert points[2]["arena_bytes"] > points[0]["arena_bytes"]
    assert (tmp_path / "g.svg").read_text().lstrip().startswith("<")


def test_errors_are_kiln_errors(cnn_engine, tmp_path):
    with pytest.raises(kiln.Error, match="missing.onnx"):
        kiln.inspect(tmp_path / "missing.onnx")
    path = tmp_path / "cnn.kiln"
    cnn_engine.save(path)
    with pytest.raises(kiln.InvalidArgument, match="--member is for bundles"):
        kiln.inspect(path, member=2)
