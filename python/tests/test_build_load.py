"""kiln.build, Engine.load/save/serialize/deserialize, I/O metadata, info and build progress."""

import io

import numpy as np
import pytest

import kiln
from conftest import CNN_SHAPES, model_path, reference


def run_cnn(engine, x):
    return engine.create_context().infer({"image": x})["probs"]


def test_build_from_path_and_bytes_agree(cnn_engine):
    with open(model_path("tiny_cnn"), "rb") as f:
        from_bytes = kiln.build(f.read(), backend="cpu", shapes=CNN_SHAPES, progress=False)
    x, expected = reference("tiny_cnn")
    np.testing.assert_allclose(run_cnn(from_bytes, x), expected, atol=1e-5)
    np.testing.assert_allclose(run_cnn(cnn_engine, x), expected, atol=1e-5)


def test_builds_are_deterministic(cnn_engine):
    again = kiln.build(model_path("tiny_cnn"), backend="cpu", shapes=CNN_SHAPES, progress=False)
    assert again.serialize() == cnn_engine.serialize()


def test_serialize_deserialize_round_trip(cnn_engine):
    data = cnn_engine.serialize()
    assert isinstance(data, bytes) and data[:8] == b"KILNENG\0"
    copy = kiln.Engine.deserialize(data)
    x, expected = reference("tiny_cnn")
    np.testing.assert_allclose(run_cnn(copy, x), expected, atol=1e-5)
    assert copy.serialize() == data


def test_save_load_round_trip(cnn_engine, tmp_path):
    path = tmp_path / "cnn.kiln"
    cnn_engine.save(path)
    assert path.stat().st_size == len(cnn_engine.serialize())
    loaded = kiln.Engine.load(path)
    x, expected = reference("tiny_cnn")
    np.testing.assert_allclose(run_cnn(loaded, x), expected, atol=1e-5)
    with open(path, "rb") as f:
        from_file_object = kiln.Engine.load(f)
    np.testing.assert_allclose(run_cnn(from_file_object, x), expected, atol=1e-5)
    assert kiln.Engine.load(io.BytesIO(path.read_bytes())).inputs == loaded.inputs


def test_inputs_outputs_metadata(cnn_engine, attention_engine):
    (inp,) = cnn_engine.inputs
    assert inp.name == "image"
    assert inp.dtype == np.float32 and inp.dtype_name == "float32"
    assert inp.shape == ("batch", 3, 32, 32)
    assert inp.profiles == (kiln.ProfileRange((1, 3, 32, 32), (4, 3, 32, 32), (8, 3, 32, 32)),)
    (out,) = cnn_engine.outputs
    assert (out.name, out.dtype, out.shape, out.profiles) == ("probs", np.dtype(np.float32), ("batch", 10), ())
    assert cnn_engine.profiles == [{"image": inp.profiles[0]}]
    (tokens,) = attention_engine.inputs
    assert tokens.shape == ("batch", "seq", 32) and tokens.profiles == ()


def test_info_is_the_manifest(cnn_engine, tmp_path):
    info = cnn_engine.info
    assert info["backend"] == "cpu" and cnn_engine.backend == "cpu"
    assert info["precision"] == "f32"
    assert info["kiln_version"] == kiln.__version__
    assert info["inputs"] == [{"name": "image", "dtype": "float32", "shape": ["batch", 3, 32, 32]}]
    assert info["profiles"] == [{"image": {"min": [1, 3, 32, 32], "opt": [4, 3, 32, 32], "max": [8, 3, 32, 32]}}]
    assert info["num_nodes"] > 0 and info["weight_bytes"] > 0 and sum(info["op_histogram"].values()) > 0
    cnn_engine.save(tmp_path / "e.kiln")
    loaded = kiln.Engine.load(tmp_path / "e.kiln").info
    assert [s["name"] for s in loaded["sections"]] == ["graph", "weights"]
    assert loaded["format_version"] == info["format_version"]


def test_progress_callable_silent_and_printed(capsys):
    lines = []
    kiln.build(model_path("tiny_cnn"), backend="cpu", progress=lines.append)
    assert lines and all(isinstance(s, str) and s for s in lines)
    capsys.readouterr()
    kiln.build(model_path("tiny_cnn"), backend="cpu", progress=False)
    assert capsys.readouterr().err == ""
    kiln.build(model_path("tiny_cnn"), backend="cpu")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == len(lines) and all(s.startswith("[kiln ") and " ms] " in s for s in err)


def test_progress_callback_exception_propagates():
    class Stop(Exception):
        pass

    def boom(line):
        raise Stop(line)

    with pytest.raises(Stop):
        kiln.build(model_path("tiny_cnn"), backend="cpu", progress=boom)


def test_one_shape_fixes_an_input():
    engine = kiln.build(model_path("tiny_cnn"), backend="cpu", shapes={"image": (2, 3, 32, 32)}, progress=False)
    assert engine.inputs[0].profiles == (kiln.ProfileRange(*[(2, 3, 32, 32)] * 3),)


def test_several_profiles():
    engine = kiln.build(model_path("tiny_cnn"), backend="cpu", progress=False,
                        shapes=[{"image": [(1, 3, 32, 32)] * 3}, {"image": [(2, 3, 32, 32), (4, 3, 32, 32), (8, 3, 32, 32)]}])
    assert len(engine.profiles) == 2
    ctx = engine.create_context()
    x = np.zeros((4, 3, 32, 32), np.float32)
    with pytest.raises(kiln.OutOfRange):
        ctx.infer({"image": x})
    ctx.set_profile(1)
    assert ctx.profile == 1
    assert ctx.infer({"image": x})["probs"].shape == (4, 10)


def test_build_argument_errors():
    with pytest.raises(kiln.InvalidArgument, match="at most one"):
        kiln.build(model_path("tiny_cnn"), fp16=True, bf16=True)
    with pytest.raises(kiln.InvalidArgument, match="backend must be"):
        kiln.build(model_path("tiny_cnn"), backend="tpu", progress=False)
    with pytest.raises(kiln.InvalidArgument, match="min, opt, max"):
        kiln.build(model_path("tiny_cnn"), shapes={"image": [(1, 3, 32, 32), (2, 3, 32, 32)]}, progress=False)
    with pytest.raises(kiln.InvalidArgument, match="model must be"):
        kiln.build(42)


def test_help_shows_docstrings():
    import pydoc

    text = pydoc.render_doc(kiln.Engine, renderer=pydoc.plaintext)
    assert "create_context" in text and "per-thread" in text
    assert "numpy arrays in, numpy arrays out" in pydoc.render_doc(kiln.ExecutionContext.infer, renderer=pydoc.plaintext)
