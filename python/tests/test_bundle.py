"""kiln.bundle: several engines of one model in one Engine, each call routed to the member that takes its shapes;
engine.members, info["bundle_members"], last_run_info()["bundle_member"], save/load, errors."""

import numpy as np
import pytest

import kiln
from conftest import model_path

SMALL = {"image": [(1, 3, 32, 32), (4, 3, 32, 32), (4, 3, 32, 32)]}
LARGE = {"image": [(5, 3, 32, 32), (16, 3, 32, 32), (32, 3, 32, 32)]}


def member(shapes):
    return kiln.build(model_path("tiny_cnn"), backend="cpu", shapes=shapes, progress=False)


@pytest.fixture(scope="module")
def bundled():
    return kiln.bundle([member(SMALL), member(LARGE)])


def test_bundle_describes_its_members(bundled):
    assert bundled.info["bundle_members"] == 2
    assert len(bundled.members) == 2
    assert [p["image"].max for p in bundled.profiles] == [(4, 3, 32, 32), (32, 3, 32, 32)]
    assert bundled.members[1].info["bundle_members"] == 0


def test_each_call_goes_to_the_member_that_fits(bundled):
    plain = member({"image": [(1, 3, 32, 32), (8, 3, 32, 32), (32, 3, 32, 32)]}).create_context()
    ctx = bundled.create_context()
    for batch in (2, 20, 4, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
        got = ctx.infer({"image": x})["probs"]
        assert ctx.last_run_info()["bundle_member"] == (0 if batch <= 4 else 1)
        np.testing.assert_allclose(got, plain.infer({"image": x})["probs"], rtol=1e-5, atol=1e-6)


def test_no_member_takes_the_shape(bundled):
    ctx = bundled.create_context()
    with pytest.raises(kiln.OutOfRange, match=r"no engine of the bundle takes input shapes 'image' \[40,3,32,32\]"):
        ctx.infer({"image": np.zeros((40, 3, 32, 32), np.float32)})


def test_saved_bundle_loads_and_routes(bundled, tmp_path):
    path = tmp_path / "b.kiln"
    bundled.save(str(path))
    loaded = kiln.Engine.load(str(path))
    assert loaded.info["bundle_members"] == 2
    assert loaded.info["format_version"] == 2
    ctx = loaded.create_context()
    ctx.infer({"image": np.zeros((9, 3, 32, 32), np.float32)})
    assert ctx.last_run_info()["bundle_member"] == 1


def test_members_must_share_inputs():
    other = kiln.build(model_path("gated_encoder"), backend="cpu", shapes={"x": [(1, 16), (2, 16), (4, 16)]},
                       progress=False)
    with pytest.raises(kiln.InvalidArgument, match="member 1 takes inputs 'x' f32 but member 0 takes 'image' f32"):
        kiln.bundle([member(SMALL), other])


def test_build_with_bundle_true_builds_one_engine_per_profile():
    lines = []
    engine = kiln.build(model_path("tiny_cnn"), backend="cpu", shapes=[SMALL, LARGE], bundle=True, progress=lines.append)
    assert engine.info["bundle_members"] == 2
    assert [line for line in lines if line.startswith("bundle member")] == ["bundle member 1 of 2", "bundle member 2 of 2"]
    ctx = engine.create_context()
    ctx.infer({"image": np.zeros((7, 3, 32, 32), np.float32)})
    assert ctx.last_run_info()["bundle_member"] == 1
    with pytest.raises(kiln.InvalidArgument, match="bundle=True needs two or more profiles"):
        kiln.build(model_path("tiny_cnn"), backend="cpu", shapes=SMALL, bundle=True, progress=False)
