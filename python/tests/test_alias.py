"""Outputs written into an input's buffer (a KV cache updated in place): kiln.build(aliases=...), the automatic
pairing by name, engine.info["aliases"], errors, and on the GPU ctx.infer updating the caller's torch tensor."""

import sys

import numpy as np
import pytest

import kiln
from conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "cli" / "fixtures"))
from make_lint_models import kv_cache_model  # noqa: E402  (ONNX bytes written by hand: no onnx package needed)


def feeds(batch=2, position=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"past.0": rng.standard_normal((batch, 6, 4)).astype(np.float32),
            "idx": np.full((batch, 1, 4), position, dtype=np.int64),
            "row": rng.standard_normal((batch, 1, 4)).astype(np.float32)}


def expected(f):
    present = f["past.0"].copy()
    position = int(f["idx"][0, 0, 0])
    present[:, position, :] = f["row"][:, 0, :]
    return present


def test_kv_names_are_paired_and_recorded():
    engine = kiln.build(kv_cache_model(), backend="cpu", progress=False)
    assert engine.info["aliases"] == {"present.0": "past.0"}
    lines = []
    kiln.build(kv_cache_model(), backend="cpu", progress=lines.append)
    assert any("'present.0' is written into the buffer of 'past.0' (in place" in line for line in lines), lines


def test_declared_alias_and_auto_alias_off(tmp_path):
    engine = kiln.build(kv_cache_model(), backend="cpu", progress=False, aliases={"act": "past.0"},
                        auto_alias=False)
    assert engine.info["aliases"] == {"act": "past.0"}
    engine.save(tmp_path / "kv.kiln")
    assert kiln.Engine.load(tmp_path / "kv.kiln").info["aliases"] == {"act": "past.0"}
    off = kiln.build(kv_cache_model(), backend="cpu", progress=False, auto_alias=False)
    assert off.info["aliases"] == {}


def test_mismatched_alias_is_an_invalid_argument():
    with pytest.raises(kiln.InvalidArgument, match=r"output 'present.0' is f32\[batch,6,4\] but input 'idx' is i64"):
        kiln.build(kv_cache_model(), backend="cpu", progress=False, aliases={"present.0": "idx"})
    with pytest.raises(kiln.InvalidArgument, match="'nope' is not an output"):
        kiln.build(kv_cache_model(), backend="cpu", progress=False, aliases={"nope": "past.0"})


def test_numpy_infer_returns_the_new_cache_and_leaves_the_input_alone():
    ctx = kiln.build(kv_cache_model(), backend="cpu", progress=False).create_context()
    f = feeds()
    before = f["past.0"].copy()
    out = ctx.infer(f)
    np.testing.assert_array_equal(out["present.0"], expected(f))
    np.testing.assert_array_equal(f["past.0"], before)


def test_torch_cuda_infer_updates_the_cache_tensor_in_place():
    torch = pytest.importorskip("torch", reason="torch is not installed here (the GPU machine's venv has it)")
    if not (torch.cuda.is_available() and kiln.cuda_available()):
        pytest.skip("no usable GPU here")
    ctx = kiln.build(kv_cache_model(), backend="cuda", progress=False).create_context()
    for step, position in enumerate((0, 5, 2)):
        f = feeds(batch=3, position=position, seed=step)
        want = expected(f)
        t = {k: torch.from_numpy(v).cuda() for k, v in f.items()}
        cache = t["past.0"]
        out = ctx.infer(t)
        torch.cuda.synchronize()
        assert out["present.0"] is cache  # the caller's tensor, updated
        np.testing.assert_array_equal(cache.cpu().numpy(), want)
        np.testing.assert_array_equal(out["act"].cpu().numpy(), np.maximum(want, 0))
