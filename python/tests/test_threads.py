"""Threads with their own contexts: correct results together, and the GIL released while the engine runs."""

import threading
import time

import numpy as np
import pytest

import kiln
from conftest import reference


def test_threads_with_own_contexts_agree(cnn_engine):
    x, expected = reference("tiny_cnn")
    errors, results = [], {}

    def work(i):
        try:
            ctx = cnn_engine.create_context()
            for _ in range(5):
                results[i] = ctx.infer({"image": x})["probs"]
        except Exception as e:  # reported below; a thread's exception would otherwise vanish
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        np.testing.assert_allclose(results[i], expected, atol=1e-5)


def _count_for(seconds):
    """Pure-Python work: how many loop turns per second (it needs the GIL the whole time)."""
    n, t0 = 0, time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        n += 1
    return n / (time.perf_counter() - t0)


def test_gil_is_released_while_the_engine_runs(cnn_engine):
    # A thread runs batch-8 inferences back to back; meanwhile this thread counts in Python until that thread
    # has done several runs. With the GIL held through each run, the counter would only advance between runs
    # (a few percent of the time); released, it runs alongside. Rates are per second and the solo rate is
    # taken before and after, so a machine loaded by other tests (ctest -j) slows both alike.
    x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    ctx = cnn_engine.create_context()
    ctx.infer({"image": x})
    solo_before = _count_for(0.3)
    stop = threading.Event()
    runs = [0]

    def infer_loop():
        while not stop.is_set():
            ctx.infer({"image": x})
            runs[0] += 1

    worker = threading.Thread(target=infer_loop)
    worker.start()
    try:
        while runs[0] < 1:  # the worker is inside its loop
            time.sleep(0.001)
        n, start, target = 0, time.perf_counter(), runs[0] + 5
        deadline = start + 60
        while runs[0] < target and time.perf_counter() < deadline:
            n += 1
        together = n / (time.perf_counter() - start)
    finally:
        stop.set()
        worker.join()
    solo = (solo_before + _count_for(0.3)) / 2
    assert runs[0] >= target, "the inference thread did not get 5 runs done in 60 s"
    ratio = together / solo
    assert ratio > 0.25, f"Python code ran at {ratio:.0%} of its solo rate while the engine ran: the GIL is held"


def test_one_context_shared_by_two_threads_is_an_error_not_a_crash(cnn_engine):
    x = np.random.default_rng(1).standard_normal((8, 3, 32, 32)).astype(np.float32)
    ctx = cnn_engine.create_context()
    stop = threading.Event()
    clashes = []

    def infer_loop():
        while not stop.is_set():
            try:
                ctx.infer({"image": x})
            except kiln.InvalidArgument as e:
                clashes.append(str(e))

    worker = threading.Thread(target=infer_loop)
    worker.start()
    try:
        deadline = time.perf_counter() + 20
        while not clashes and time.perf_counter() < deadline:
            try:
                ctx.infer({"image": x})
            except kiln.InvalidArgument as e:
                clashes.append(str(e))
    finally:
        stop.set()
        worker.join()
    assert clashes, "two threads never ran one context at the same time in 20 s"
    assert "running in another thread" in clashes[0] and "create_context" in clashes[0]
    # Still usable afterwards.
    assert ctx.infer({"image": x})["probs"].shape == (8, 10)
