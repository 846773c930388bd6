"""Every error case becomes a kiln.Error subclass with kiln's message; none aborts the interpreter."""

import numpy as np
import pytest

import kiln
from kiln import _kiln
from conftest import model_path, reference


def test_every_status_code_has_a_class():
    codes = _kiln._status_codes()
    assert len(codes) >= 8
    names = {name for _, name in codes}
    assert {"invalid argument", "not found", "invalid model", "unsupported", "invalid engine"} <= names
    for cls in (kiln.InvalidArgument, kiln.NotFound, kiln.InvalidModel, kiln.Unsupported, kiln.InvalidEngine,
                kiln.OutOfRange, kiln.IoError, kiln.Internal, kiln.OutOfMemory):
        assert issubclass(cls, kiln.Error) and issubclass(cls, RuntimeError)
    assert issubclass(kiln.InvalidArgument, ValueError) and issubclass(kiln.OutOfMemory, MemoryError)


def test_unknown_input_name(cnn_engine):
    x, _ = reference("tiny_cnn")
    with pytest.raises(kiln.NotFound, match=r"no input 'img'; its inputs are 'image'"):
        cnn_engine.create_context().infer({"img": x})


def test_missing_input(cnn_engine):
    with pytest.raises(kiln.InvalidArgument, match=r"input 'image' \(f32 \[batch,3,32,32\]\) was not given"):
        cnn_engine.create_context().infer({})


def test_wrong_dtype_names_input_expected_and_given(cnn_engine):
    x, _ = reference("tiny_cnn")
    with pytest.raises(kiln.InvalidArgument, match="input 'image' expects float32 but got float64") as e:
        cnn_engine.create_context().infer({"image": x.astype(np.float64)})
    assert "astype(numpy.float32)" in str(e.value)
    with pytest.raises(kiln.InvalidArgument, match="expects float32 but got int32"):
        cnn_engine.create_context().infer({"image": x.astype(np.int32)})
    with pytest.raises(kiln.InvalidArgument, match="expects float32 but got object"):
        cnn_engine.create_context().infer({"image": np.array([object()])})


def test_wrong_rank(cnn_engine):
    x, _ = reference("tiny_cnn")
    with pytest.raises(kiln.InvalidArgument, match=r"input 'image' has rank 4.*of rank 3"):
        cnn_engine.create_context().infer({"image": x[0]})


def test_wrong_static_dim(cnn_engine):
    with pytest.raises(kiln.InvalidArgument, match="input 'image' dim 1 must be 3"):
        cnn_engine.create_context().infer({"image": np.zeros((1, 4, 32, 32), np.float32)})


def test_shape_outside_profile(cnn_engine):
    ctx = cnn_engine.create_context()
    with pytest.raises(kiln.OutOfRange, match="input 'image' dim 0 is 9, outside optimization profile 0"):
        ctx.infer({"image": np.zeros((9, 3, 32, 32), np.float32)})
    with pytest.raises(kiln.OutOfRange):
        ctx.set_input_shape("image", (9, 3, 32, 32))
    with pytest.raises(kiln.InvalidArgument, match="profile 3 does not exist"):
        ctx.set_profile(3)
    # The context keeps working after errors.
    x, expected = reference("tiny_cnn")
    np.testing.assert_allclose(ctx.infer({"image": x})["probs"], expected, atol=1e-5)


def test_garbage_truncated_and_missing_engine_files(cnn_engine, tmp_path):
    garbage = tmp_path / "garbage.kiln"
    garbage.write_bytes(b"this is not an engine" * 10)
    with pytest.raises(kiln.InvalidEngine):
        kiln.Engine.load(garbage)
    data = cnn_engine.serialize()
    truncated = tmp_path / "truncated.kiln"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(kiln.InvalidEngine):
        kiln.Engine.load(truncated)
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF
    with pytest.raises(kiln.InvalidEngine):
        kiln.Engine.deserialize(bytes(flipped))
    with pytest.raises(kiln.Error, match="missing.kiln"):
        kiln.Engine.load(tmp_path / "missing.kiln")
    with pytest.raises(kiln.InvalidEngine):
        kiln.Engine.deserialize(b"")


def test_closed_engine_file_object(cnn_engine, tmp_path):
    path = tmp_path / "e.kiln"
    cnn_engine.save(path)
    f = open(path, "rb")
    f.close()
    with pytest.raises(kiln.InvalidArgument, match="closed file"):
        kiln.Engine.load(f)
    with open(path, "r", encoding="latin-1") as text:
        with pytest.raises(kiln.InvalidArgument, match="binary mode"):
            kiln.Engine.load(text)


def test_bad_models():
    with pytest.raises(kiln.InvalidModel):
        kiln.build(b"\x08\x07garbage that is not a ModelProto", backend="cpu", progress=False)
    with pytest.raises(kiln.NotFound):
        kiln.build("/nonexistent/model.onnx", backend="cpu", progress=False)


def test_save_into_missing_directory(cnn_engine, tmp_path):
    with pytest.raises(kiln.Error, match="no_such_dir"):
        cnn_engine.save(tmp_path / "no_such_dir" / "e.kiln")


def test_non_array_input(cnn_engine):
    with pytest.raises(kiln.InvalidArgument, match="inputs must be a dict"):
        cnn_engine.create_context().infer([1, 2, 3])


def test_unknown_fp32_layer_is_an_error():
    if not kiln.cuda_available():
        pytest.skip("fp32_layers applies to f16/bf16 CUDA engines; no usable GPU: " + kiln.cuda_unavailable_reason())
    with pytest.raises(kiln.Error, match="no_such_node"):
        kiln.build(model_path("tiny_cnn"), backend="cuda", fp16=True, fp32_layers=["no_such_node"], progress=False)
