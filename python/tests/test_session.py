"""kiln.InferenceSession: ONNX Runtime's API on the shipped models (and against onnxruntime where installed)."""

import threading

import numpy as np
import pytest

import kiln
from conftest import model_path, reference


@pytest.fixture(scope="module")
def cnn_session():
    return kiln.InferenceSession(model_path("tiny_cnn"), providers=["CPUExecutionProvider"])


def test_metadata_spelled_as_onnxruntime(cnn_session):
    (i,) = cnn_session.get_inputs()
    assert (i.name, i.shape, i.type) == ("image", ["batch", 3, 32, 32], "tensor(float)")
    (o,) = cnn_session.get_outputs()
    assert (o.name, o.shape, o.type) == ("probs", ["batch", 10], "tensor(float)")
    assert cnn_session.get_providers() == ["CPUExecutionProvider"]
    assert cnn_session.get_overridable_initializers() == []


def test_run_matches_reference(cnn_session):
    x, expected = reference("tiny_cnn")
    (y,) = cnn_session.run(None, {"image": x})
    np.testing.assert_allclose(y, expected, atol=1e-5)
    (y2,) = cnn_session.run(["probs"], {"image": x})
    np.testing.assert_allclose(y2, expected, atol=1e-5)
    with pytest.raises(kiln.NotFound, match="no output 'logits'"):
        cnn_session.run(["logits"], {"image": x})


def test_attention_model_from_bytes():
    with open(model_path("tiny_attention"), "rb") as f:
        session = kiln.InferenceSession(f.read(), providers=["CPUExecutionProvider"])
    x, expected = reference("tiny_attention")
    (i,) = session.get_inputs()
    assert i.shape == ["batch", "seq", 32]
    (y,) = session.run([], {"tokens": x})
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_gpu_providers_fall_back_to_cpu_when_listed():
    session = kiln.InferenceSession(model_path("tiny_cnn"),
                                    providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    expected_provider = "CUDAExecutionProvider" if kiln.cuda_available() else "CPUExecutionProvider"
    assert session.get_providers()[0] == expected_provider
    if not kiln.cuda_available():
        with pytest.raises(kiln.Error):
            kiln.InferenceSession(model_path("tiny_cnn"), providers=["CUDAExecutionProvider"])


def test_kiln_engine_file_loads(cnn_session, tmp_path):
    path = tmp_path / "cnn.kiln"
    cnn_session.engine.save(path)
    session = kiln.InferenceSession(str(path))
    x, expected = reference("tiny_cnn")
    np.testing.assert_allclose(session.run(None, {"image": x})[0], expected, atol=1e-5)


def test_concurrent_runs(cnn_session):
    x, expected = reference("tiny_cnn")
    outs, errors = [], []

    def work():
        try:
            for _ in range(5):
                outs.append(cnn_session.run(None, {"image": x})[0])
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(outs) == 20
    for y in outs:
        np.testing.assert_allclose(y, expected, atol=1e-5)


def test_io_binding_with_host_buffers(cnn_session):
    x, expected = reference("tiny_cnn")
    binding = cnn_session.io_binding()
    binding.bind_cpu_input("image", x)
    binding.bind_output("probs")
    cnn_session.run_with_iobinding(binding)
    (y,) = binding.copy_outputs_to_cpu()
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert binding.get_outputs()[0].shape() == list(expected.shape)

    # Pointers into caller-owned host memory, as torch CPU tensors' data_ptr() give.
    x_buf = np.ascontiguousarray(x)
    y_buf = np.zeros(expected.shape, np.float32)
    binding = cnn_session.io_binding()
    binding.bind_input("image", "cpu", 0, np.float32, x_buf.shape, x_buf.ctypes.data)
    binding.bind_output("probs", "cpu", 0, np.float32, y_buf.shape, y_buf.ctypes.data)
    cnn_session.run_with_iobinding(binding)
    np.testing.assert_allclose(y_buf, expected, atol=1e-5)
    assert binding.get_outputs()[0].data_ptr() == y_buf.ctypes.data


def test_io_binding_errors(cnn_session):
    binding = cnn_session.io_binding()
    with pytest.raises(kiln.InvalidArgument, match="'image' is float32 in the engine but was bound as float64"):
        binding.bind_input("image", "cpu", 0, np.float64, (1, 3, 32, 32), 4096)
    with pytest.raises(kiln.NotFound):
        binding.bind_input("img", "cpu", 0, np.float32, (1, 3, 32, 32), 4096)
    with pytest.raises(kiln.InvalidArgument, match="needs its shape"):
        binding.bind_output("probs", "cpu", 0, np.float32, None, 4096)


def test_same_outputs_as_onnxruntime():
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed here (the GPU machine has it)")
    for name, key in (("tiny_cnn", "image"), ("tiny_attention", "tokens")):
        x, _ = reference(name)
        want = ort.InferenceSession(model_path(name), providers=["CPUExecutionProvider"]).run(None, {key: x})
        got = kiln.InferenceSession(model_path(name), providers=["CPUExecutionProvider"]).run(None, {key: x})
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
