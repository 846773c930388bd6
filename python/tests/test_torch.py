"""torch tensors in and out: host tensors anywhere torch is installed; CUDA tensors (DLPack, no host copy,
torch's current stream) where a GPU is usable. Skipped with the reason elsewhere."""

import threading

import numpy as np
import pytest

import kiln
from conftest import CNN_SHAPES, model_path, reference

torch = pytest.importorskip("torch", reason="torch is not installed here (the GPU machine's venv has it)")
gpu = pytest.mark.skipif(not (torch.cuda.is_available() and kiln.cuda_available()),
                         reason="no usable GPU for kiln and torch: " + (kiln.cuda_unavailable_reason() or "torch sees none"))


@pytest.fixture(scope="module")
def cuda_cnn():
    return kiln.build(model_path("tiny_cnn"), backend="cuda", shapes=CNN_SHAPES, progress=False)


def small_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(8, 5)).eval()


def test_cpu_tensors_in_and_out(cnn_engine):
    x, expected = reference("tiny_cnn")
    y = cnn_engine.create_context().infer({"image": torch.from_numpy(x)})["probs"]
    assert isinstance(y, torch.Tensor) and y.device.type == "cpu"
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-5)
    out = torch.empty(expected.shape)
    assert cnn_engine.create_context().infer({"image": torch.from_numpy(x)}, out={"probs": out})["probs"] is out
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


def test_from_torch_on_the_host():
    net = small_net()
    x = torch.randn(3, 3, 16, 16)
    engine = kiln.from_torch(net, (x,), dynamic_shapes={0: {0: "batch"}}, backend="cpu")
    with torch.no_grad():
        want = net(x[:2])
    got = engine(x[:2])
    assert isinstance(got, torch.Tensor) and got.shape == want.shape
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)
    assert engine.engine.inputs[0].shape[0] == "batch"


def test_from_torch_reports_export_problems():
    class ReturnsDict(torch.nn.Module):
        def forward(self, x):
            return {"y": x * 2}

    with pytest.raises(kiln.ExportError, match="(?s)returns a dict.*what to try"):
        kiln.from_torch(ReturnsDict(), torch.randn(2, 3))

    class Broken(torch.nn.Module):
        def forward(self, x):
            return x @ torch.randn(7, 7)

    with pytest.raises(kiln.ExportError, match="(?s)failed before export.*what to try"):
        kiln.from_torch(Broken(), torch.randn(2, 3))


@gpu
def test_cuda_tensors_in_cuda_tensors_out(cuda_cnn):
    x, expected = reference("tiny_cnn")
    ctx = cuda_cnn.create_context()
    y = ctx.infer({"image": torch.from_numpy(x).cuda()})["probs"]
    assert isinstance(y, torch.Tensor) and y.is_cuda and y.device == torch.device("cuda", 0)
    np.testing.assert_allclose(y.cpu().numpy(), expected, rtol=1e-4, atol=1e-5)
    assert ctx.last_run_info()["gpu_nodes"] > 0


@gpu
def test_cuda_out_and_non_contiguous(cuda_cnn):
    x, expected = reference("tiny_cnn")
    ctx = cuda_cnn.create_context()
    out = torch.full(expected.shape, -1.0, device="cuda")
    ptr = out.data_ptr()
    strided = torch.from_numpy(x).repeat_interleave(2, dim=0).cuda()[::2]
    assert not strided.is_contiguous()
    result = ctx.infer({"image": strided}, out={"probs": out})
    assert result["probs"] is out and out.data_ptr() == ptr
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(kiln.InvalidArgument, match="out\\['probs'\\] has shape"):
        ctx.infer({"image": strided}, out={"probs": torch.empty(2, 10, device="cuda")})


@gpu
def test_cuda_errors(cuda_cnn, cnn_engine):
    x, _ = reference("tiny_cnn")
    xc = torch.from_numpy(x).cuda()
    ctx = cuda_cnn.create_context()
    with pytest.raises(kiln.InvalidArgument, match="input 'image' expects float32 but got float64"):
        ctx.infer({"image": xc.double()})
    with pytest.raises(kiln.NotFound, match="no input 'img'"):
        ctx.infer({"img": xc})
    with pytest.raises(kiln.OutOfRange):
        ctx.infer({"image": torch.zeros(9, 3, 32, 32, device="cuda")})
    with pytest.raises(kiln.InvalidArgument, match="CPU engine"):
        cnn_engine.create_context().infer({"image": xc})
    if torch.cuda.device_count() > 1:
        with pytest.raises(kiln.InvalidArgument, match="is on cuda:1 but this context runs on cuda:0"):
            ctx.infer({"image": xc.to("cuda:1")})


@gpu
def test_cpu_tensors_on_a_cuda_engine_are_copied(cuda_cnn):
    x, expected = reference("tiny_cnn")
    y = cuda_cnn.create_context().infer({"image": torch.from_numpy(x)})["probs"]
    assert y.device.type == "cpu"  # host in, host out: the engine copies to and from the GPU itself
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-5)


@gpu
def test_ordered_on_torchs_current_stream(cuda_cnn):
    x, expected = reference("tiny_cnn")
    ctx = cuda_cnn.create_context()
    side = torch.cuda.Stream()
    base = torch.from_numpy(x).cuda()
    torch.cuda.synchronize()
    with torch.cuda.stream(side):
        for _ in range(50):  # queue work ahead of the input on the side stream
            torch.cuda._sleep(100000)
        xin = base * 1.0
        y = ctx.infer({"image": xin})["probs"]
        z = y * 2.0
    side.synchronize()
    np.testing.assert_allclose(z.cpu().numpy(), 2 * expected, rtol=1e-4, atol=1e-5)


@gpu
def test_enqueue_with_torch_pointers(cuda_cnn):
    x, expected = reference("tiny_cnn")
    ctx = cuda_cnn.create_context()
    xin = torch.from_numpy(x).cuda()
    y = torch.empty(expected.shape, device="cuda")
    ctx.set_input_shape("image", xin.shape)
    ctx.set_tensor_address("image", xin.data_ptr())
    ctx.set_tensor_address("probs", y.data_ptr(), y.numel() * 4)
    ctx.enqueue(torch.cuda.current_stream().cuda_stream)
    torch.cuda.current_stream().synchronize()
    np.testing.assert_allclose(y.cpu().numpy(), expected, rtol=1e-4, atol=1e-5)


@gpu
def test_cuda_threads_with_own_contexts(cuda_cnn):
    x, expected = reference("tiny_cnn")
    errors, outs = [], []

    def work():
        try:
            ctx = cuda_cnn.create_context()
            xin = torch.from_numpy(x).cuda()
            for _ in range(20):
                y = ctx.infer({"image": xin})["probs"]
            torch.cuda.current_stream().synchronize()
            outs.append(y.cpu().numpy())
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(outs) == 4
    for y in outs:
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@gpu
def test_session_io_binding_with_torch():
    x, expected = reference("tiny_cnn")
    session = kiln.InferenceSession(model_path("tiny_cnn"), providers=["CUDAExecutionProvider"])
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    xin = torch.from_numpy(x).cuda()
    y = torch.empty(expected.shape, device="cuda")
    binding = session.io_binding()
    binding.bind_input("image", "cuda", 0, np.float32, tuple(xin.shape), xin.data_ptr())
    binding.bind_output("probs", "cuda", 0, np.float32, tuple(y.shape), y.data_ptr())
    session.run_with_iobinding(binding)
    np.testing.assert_allclose(y.cpu().numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(binding.copy_outputs_to_cpu()[0], expected, rtol=1e-4, atol=1e-5)
    binding.bind_output("probs", "cuda")  # kiln allocates (with torch)
    session.run_with_iobinding(binding)
    (value,) = binding.get_outputs()
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-4, atol=1e-5)


@gpu
def test_from_torch_on_the_gpu():
    net = small_net().cuda()
    x = torch.randn(4, 3, 16, 16, device="cuda")
    engine = kiln.from_torch(net, x, dynamic_shapes=True)
    with torch.no_grad():
        want = net(x)
    got = engine(x)
    assert got.is_cuda
    assert (got - want).abs().max().item() <= 1e-3 * want.abs().max().item()
