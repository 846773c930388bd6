"""ExecutionContext on the CPU backend with numpy: infer, out=, and the C++-style bind/enqueue path."""

import numpy as np
import pytest

import kiln
from conftest import reference


def test_infer_matches_reference(cnn_engine, attention_engine):
    for engine, name, key in ((cnn_engine, "tiny_cnn", "image"), (attention_engine, "tiny_attention", "tokens")):
        x, expected = reference(name)
        out = engine.create_context().infer({key: x})
        assert list(out) == [engine.outputs[0].name]
        (y,) = out.values()
        assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == expected.shape
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_outputs_outlive_the_context(cnn_engine):
    x, expected = reference("tiny_cnn")
    ctx = cnn_engine.create_context()
    y = ctx.infer({"image": x})["probs"]
    del ctx
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_non_contiguous_inputs_are_made_contiguous(cnn_engine):
    x, expected = reference("tiny_cnn")
    ctx = cnn_engine.create_context()
    fortran = np.asfortranarray(x)
    assert not fortran.flags.c_contiguous
    np.testing.assert_allclose(ctx.infer({"image": fortran})["probs"], expected, atol=1e-5)
    strided = np.repeat(x, 2, axis=0)[::2]  # every other image: x itself, strided
    assert not strided.flags.c_contiguous
    np.testing.assert_allclose(ctx.infer({"image": strided})["probs"], expected, atol=1e-5)
    read_only = x.copy()
    read_only.flags.writeable = False
    np.testing.assert_allclose(ctx.infer({"image": read_only})["probs"], expected, atol=1e-5)


def test_changing_batch_between_calls(cnn_engine):
    x, expected = reference("tiny_cnn")
    ctx = cnn_engine.create_context()
    for n in (1, 3, 2):
        np.testing.assert_allclose(ctx.infer({"image": x[:n]})["probs"], expected[:n], atol=1e-5)


def test_out_writes_into_preallocated_arrays(cnn_engine):
    x, expected = reference("tiny_cnn")
    ctx = cnn_engine.create_context()
    buf = np.full(expected.shape, -1.0, np.float32)
    result = ctx.infer({"image": x}, out={"probs": buf})
    assert result["probs"] is buf
    np.testing.assert_allclose(buf, expected, atol=1e-5)


def test_out_errors(cnn_engine):
    x, expected = reference("tiny_cnn")
    ctx = cnn_engine.create_context()
    with pytest.raises(kiln.InvalidArgument, match=r"out\['probs'\] has shape \[2,10\]"):
        ctx.infer({"image": x}, out={"probs": np.empty((2, 10), np.float32)})
    with pytest.raises(kiln.InvalidArgument, match="output 'probs' expects float32 but got float64"):
        ctx.infer({"image": x}, out={"probs": np.empty(expected.shape, np.float64)})
    with pytest.raises(kiln.NotFound, match="no output 'logits'"):
        ctx.infer({"image": x}, out={"logits": np.empty(expected.shape, np.float32)})
    with pytest.raises(kiln.InvalidArgument, match="writeable C-contiguous"):
        ctx.infer({"image": x}, out={"probs": np.empty((10, 3), np.float32).T})


def test_bind_and_enqueue_with_numpy_buffers(cnn_engine):
    x, expected = reference("tiny_cnn")
    ctx = cnn_engine.create_context()
    ctx.set_input_shape("image", x.shape)
    assert ctx.output_shape("probs") == expected.shape
    y = np.zeros(expected.shape, np.float32)
    ctx.set_tensor_address("image", x.ctypes.data)  # size from the shape just set
    ctx.set_tensor_address("probs", y.ctypes.data, y.nbytes)
    ctx.enqueue()
    np.testing.assert_allclose(y, expected, atol=1e-5)
    info = ctx.last_run_info()
    assert info["cuda_graph"] is False and info["host_nodes"] == cnn_engine.info["num_nodes"]
    assert set(info) >= {"arena", "not_captured", "arena_bytes", "gpu_nodes", "fallback_nodes", "downloads"}
    # A CPU engine holds no shape plans and keys nothing by value.
    assert (info["cached_plans"], info["plan_cache_limit"], info["value_keyed_inputs"]) == (0, 0, [])


def test_enqueue_checks_buffer_sizes(cnn_engine):
    x, expected = reference("tiny_cnn")
    ctx = cnn_engine.create_context()
    ctx.set_input_shape("image", x.shape)
    small = np.zeros(5, np.float32)
    ctx.set_tensor_address("image", x.ctypes.data)
    ctx.set_tensor_address("probs", small.ctypes.data, small.nbytes)
    with pytest.raises(kiln.InvalidArgument, match="output 'probs'.*buffer holds 20 bytes"):
        ctx.enqueue()
    assert not small.any()  # nothing partial was written


def test_set_tensor_address_needs_a_shape_for_dynamic_inputs(cnn_engine):
    ctx = cnn_engine.create_context()
    with pytest.raises(kiln.InvalidArgument, match="set_input_shape"):
        ctx.set_tensor_address("image", 4096)
    with pytest.raises(kiln.NotFound, match="no tensor 'nope'"):
        ctx.set_tensor_address("nope", 4096)
    with pytest.raises(kiln.InvalidArgument, match="null"):
        ctx.set_tensor_address("probs", 0, 40)


def test_dlpack_binding_path_on_the_host(cnn_engine):
    # The path torch CUDA tensors take (DLPack capsules bound in place, then enqueue), driven here with numpy's
    # own __dlpack__ on a CPU engine, so CI covers its parsing and checks.
    x, expected = reference("tiny_cnn")
    ctx = cnn_engine.create_context()
    native = ctx._native
    shapes = native.bind_inputs({"image": x})
    assert shapes == [("probs", expected.shape)]
    y = np.zeros(expected.shape, np.float32)
    native.bind_outputs_and_enqueue({"probs": y}, 0)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    with pytest.raises(kiln.InvalidArgument, match="input 'image' expects float32 but got float64"):
        native.bind_inputs({"image": x.astype(np.float64)})
    with pytest.raises(kiln.InvalidArgument, match="not contiguous"):
        native.bind_inputs({"image": np.repeat(x, 2, axis=0)[::2]})
    with pytest.raises(kiln.NotFound, match="no input 'img'"):
        native.bind_inputs({"img": x})
    with pytest.raises(kiln.InvalidArgument, match="was not given"):
        native.bind_inputs({})
    with pytest.raises(kiln.InvalidArgument, match="has no __dlpack__"):
        native.bind_inputs({"image": [1.0]})
    native.bind_inputs({"image": x})
    with pytest.raises(kiln.InvalidArgument, match="output 'probs' has no tensor"):
        native.bind_outputs_and_enqueue({}, 0)
    native.bind_inputs({"image": x})
    with pytest.raises(kiln.InvalidArgument, match="output 'probs' expects float32 but got int32"):
        native.bind_outputs_and_enqueue({"probs": np.zeros(expected.shape, np.int32)}, 0)


def _fields(name, a, device=-1):
    """A tensor as the torch CUDA path hands it to the native layer (see ExecutionContext._infer_torch_cuda)."""
    return (name, a.ctypes.data, a.shape, a.dtype.name, device, a.flags.c_contiguous)


def test_pointer_binding_path_on_the_host(cnn_engine):
    # torch CUDA tensors are bound by their fields (data_ptr, shape, dtype, device, contiguous), not by DLPack;
    # driven here with numpy on a CPU engine, so CI covers the parsing and every check.
    x, expected = reference("tiny_cnn")
    native = cnn_engine.create_context()._native
    assert native.bind_input_pointers([_fields("image", x)]) == [("probs", expected.shape)]
    y = np.zeros(expected.shape, np.float32)
    native.bind_output_pointers_and_enqueue([_fields("probs", y)], 0)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    # A batch of one, bound by address: the output dims follow the input's.
    x1 = np.ascontiguousarray(x[:1])
    assert native.bind_input_pointers([_fields("image", x1)]) == [("probs", (1,) + expected.shape[1:])]
    y1 = np.zeros((1,) + expected.shape[1:], np.float32)
    native.bind_output_pointers_and_enqueue([_fields("probs", y1)], 0)
    np.testing.assert_allclose(y1, expected[:1], atol=1e-5)

    x64 = x.astype(np.float64)
    with pytest.raises(kiln.InvalidArgument, match="input 'image' expects float32 but got float64"):
        native.bind_input_pointers([_fields("image", x64)])
    with pytest.raises(kiln.InvalidArgument, match="input 'image' expects float32 but got torch.complex64"):
        native.bind_input_pointers([("image", x.ctypes.data, x.shape, "torch.complex64", -1, True)])
    strided = np.repeat(x, 2, axis=0)[::2]
    with pytest.raises(kiln.InvalidArgument, match="not contiguous"):
        native.bind_input_pointers([_fields("image", strided)])
    with pytest.raises(kiln.InvalidArgument, match="input 'image' is on cuda:0 but this is a CPU engine"):
        native.bind_input_pointers([_fields("image", x, device=0)])
    with pytest.raises(kiln.NotFound, match="no input 'img'; its inputs are 'image'"):
        native.bind_input_pointers([_fields("img", x)])
    with pytest.raises(kiln.InvalidArgument, match="was not given"):
        native.bind_input_pointers([])
    with pytest.raises(kiln.InvalidArgument, match=r"\(name, address, dims, dtype, device, contiguous\) tuples"):
        native.bind_input_pointers([("image", x.ctypes.data)])
    with pytest.raises(kiln.InvalidArgument, match="negative dim"):
        native.bind_input_pointers([("image", x.ctypes.data, (-1, 3, 32, 32), "float32", -1, True)])
    with pytest.raises(kiln.InvalidArgument, match="overflows int64"):
        native.bind_input_pointers([("image", x.ctypes.data, (2**62, 4, 32, 32), "float32", -1, True)])
    native.bind_input_pointers([_fields("image", x)])
    with pytest.raises(kiln.InvalidArgument, match="output 'probs' has no tensor"):
        native.bind_output_pointers_and_enqueue([], 0)
    native.bind_input_pointers([_fields("image", x)])
    with pytest.raises(kiln.InvalidArgument, match="output 'probs' expects float32 but got int32"):
        native.bind_output_pointers_and_enqueue([_fields("probs", np.zeros(expected.shape, np.int32))], 0)
    native.bind_input_pointers([_fields("image", x)])
    with pytest.raises(kiln.NotFound, match="no output 'logits'"):
        native.bind_output_pointers_and_enqueue([_fields("logits", y)], 0)
    with pytest.raises(kiln.InvalidArgument, match="bound by another thread .or not at all"):
        native.bind_output_pointers_and_enqueue([_fields("probs", y)], 0)  # the failed call used the binding


def test_dlpack_binding_by_another_thread_in_between_is_an_error(cnn_engine):
    import threading

    x, expected = reference("tiny_cnn")
    native = cnn_engine.create_context()._native
    native.bind_inputs({"image": x})
    other = threading.Thread(target=lambda: native.bind_inputs({"image": x[:1]}))
    other.start()
    other.join()
    with pytest.raises(kiln.InvalidArgument, match="bound by another thread"):
        native.bind_outputs_and_enqueue({"probs": np.zeros(expected.shape, np.float32)}, 0)
    with pytest.raises(kiln.InvalidArgument, match="bound by another thread"):
        native.bind_outputs_and_enqueue({"probs": np.zeros(expected.shape, np.float32)}, 0)  # nothing bound now
