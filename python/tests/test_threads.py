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
    """Pure-Python work: how far a loop counts in SECONDS (it needs the GIL the whole time)."""
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def test_gil_is_released_while_the_engine_runs(cnn_engine):
    # A thread runs batch-8 inferences back to back; meanwhile this thread counts in Python. With the GIL held
    # through each run, the counter would only advance between runs (a few percent of the time); released, it
    # runs alongside (about half or more of its solo rate on two cores, even under load).
    x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    ctx = cnn_engine.create_context()
    t0 = time.perf_counter()
    ctx.infer({"image": x})
    one_run = time.perf_counter() - t0
    window = max(0.5, 20 * one_run)
    solo = _count_for(window)
    stop = threading.Event()
    runs = [0, 0.0]  # count, seconds inside infer

    def infer_loop():
        while not stop.is_set():
            t = time.perf_counter()
            ctx.infer({"image": x})
            runs[1] += time.perf_counter() - t
            runs[0] += 1

    worker = threading.Thread(target=infer_loop)
    worker.start()
    time.sleep(one_run)  # let it get going
    together = _count_for(window)
    stop.set()
    worker.join()
    assert runs[0] >= 3, "the inference thread barely ran"
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
