"""``kiln.InferenceSession``: ONNX Runtime's session API on a kiln engine, so code written for ONNX Runtime
runs on kiln by changing one import. docs/python.md lists what is and is not covered."""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _kiln
from ._errors import Error, InvalidArgument, NotFound, Unsupported
from .engine import Engine, build

# ONNX Runtime's spelling of element types ("tensor(float)"), keyed by kiln's dtype names.
_ORT_TYPES = {
    "float32": "tensor(float)", "float16": "tensor(float16)", "bfloat16": "tensor(bfloat16)",
    "float64": "tensor(double)", "int8": "tensor(int8)", "int16": "tensor(int16)", "int32": "tensor(int32)",
    "int64": "tensor(int64)", "uint8": "tensor(uint8)", "uint16": "tensor(uint16)", "uint32": "tensor(uint32)",
    "uint64": "tensor(uint64)", "bool": "tensor(bool)",
}
_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class NodeArg:
    """An input or output as ONNX Runtime describes it: ``name``, ``shape`` (ints, strings for symbolic dims,
    None for unknown ones) and ``type`` ("tensor(float)")."""

    __slots__ = ("name", "shape", "type")

    def __init__(self, name: str, shape: List[Union[int, str, None]], type: str) -> None:
        self.name = name
        self.shape = shape
        self.type = type

    def __repr__(self) -> str:
        return f"NodeArg(name='{self.name}', type='{self.type}', shape={self.shape})"


def _node_args(infos: list) -> List[NodeArg]:
    out = []
    for t in infos:
        shape = [None if d == "?" else d for d in t.shape] if t.shape is not None else []
        out.append(NodeArg(t.name, shape, _ORT_TYPES.get(t.dtype_name, f"tensor({t.dtype_name})")))
    return out


def _provider_names(providers: Optional[Sequence[Any]]) -> List[str]:
    names = []
    for p in providers or []:
        names.append(p[0] if isinstance(p, (tuple, list)) else str(p))
    return names


class InferenceSession:
    """Builds (or loads) a kiln engine and runs it with ONNX Runtime's API.

    path_or_bytes: an .onnx path or ONNX bytes (built now), or a .kiln engine path (loaded).
    providers: ONNX Runtime provider names in priority order; TensorRT/CUDA ask for kiln's CUDA backend,
        CPUExecutionProvider for its CPU backend (used when no GPU is usable and it is listed, as ONNX Runtime
        falls back). None: CUDA when usable, else CPU.
    sess_options: accepted and ignored (kiln has its own graph optimizations).
    kiln_options: keyword arguments for ``kiln.build`` (``shapes=``, ``fp16=``...); progress is off by default.
    """

    def __init__(self, path_or_bytes: Union[str, "os.PathLike[str]", bytes], sess_options: Any = None,
                 providers: Optional[Sequence[Any]] = None, provider_options: Any = None, **kiln_options: Any) -> None:
        names = _provider_names(providers)
        kiln_options.setdefault("progress", False)
        if isinstance(path_or_bytes, (str, os.PathLike)) and os.fspath(path_or_bytes).endswith(".kiln"):
            self._engine = Engine.load(path_or_bytes)
        else:
            wants_gpu = any(n in _GPU_PROVIDERS for n in names)
            backend = "auto" if not names else "cuda" if wants_gpu else "cpu"
            try:
                self._engine = build(path_or_bytes, backend=backend, **kiln_options)
            except Error:
                if not (wants_gpu and "CPUExecutionProvider" in names):
                    raise
                self._engine = build(path_or_bytes, backend="cpu", **kiln_options)
        self._pool: List[Any] = []
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The kiln engine behind the session."""
        return self._engine

    def get_inputs(self) -> List[NodeArg]:
        return _node_args(self._engine.inputs)

    def get_outputs(self) -> List[NodeArg]:
        return _node_args(self._engine.outputs)

    def get_overridable_initializers(self) -> List[NodeArg]:
        return []  # kiln folds initializers into the engine

    def get_providers(self) -> List[str]:
        if self._engine.backend == "cuda":
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def get_provider_options(self) -> Dict[str, Dict[str, str]]:
        return {p: {} for p in self.get_providers()}

    # ONNX Runtime sessions take concurrent run() calls; kiln contexts are per thread, so runs borrow one.
    def _borrow(self) -> Any:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return self._engine.create_context()

    def _give_back(self, ctx: Any) -> None:
        with self._lock:
            self._pool.append(ctx)

    def run(self, output_names: Optional[Sequence[str]], input_feed: Dict[str, Any], run_options: Any = None) -> List[Any]:
        """Runs the model: OUTPUT_NAMES (None or [] for all) in that order, as numpy arrays."""
        all_names = [t.name for t in self._engine.outputs]
        names = list(output_names) if output_names else all_names
        for n in names:
            if n not in all_names:
                raise NotFound(f"the model has no output '{n}'; its outputs are {all_names}")
        ctx = self._borrow()
        try:
            result = ctx.infer(input_feed)
        finally:
            self._give_back(ctx)
        return [result[n] for n in names]

    def io_binding(self) -> "IOBinding":
        """Bindings of caller-owned buffers (device pointers from torch tensors, or numpy arrays)."""
        return IOBinding(self)

    def run_with_iobinding(self, iobinding: "IOBinding", run_options: Any = None) -> None:
        iobinding._run()


class _BoundOutput:
    """The part of ONNX Runtime's OrtValue that IOBinding.get_outputs() users call."""

    def __init__(self, value: Any, device: str) -> None:
        self._value = value
        self._device = device

    def numpy(self) -> np.ndarray:
        v = self._value
        return v if isinstance(v, np.ndarray) else v.detach().cpu().numpy()

    def shape(self) -> List[int]:
        return list(self._value.shape)

    def device_name(self) -> str:
        return self._device

    def data_ptr(self) -> int:
        v = self._value
        return v.ctypes.data if isinstance(v, np.ndarray) else v.data_ptr()


def _stream() -> int:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.current_stream().cuda_stream
    return 0


class IOBinding:
    """ONNX Runtime's IOBinding for buffers the caller owns: ``bind_input(name, device_type, device_id,
    element_type, shape, buffer_ptr)``, ``bind_output(...)`` with a buffer or without (kiln then allocates:
    numpy on the CPU, torch on CUDA), ``bind_cpu_input(name, array)``, ``get_outputs()``,
    ``copy_outputs_to_cpu()``. Runs are synchronous, as ONNX Runtime's are."""

    def __init__(self, session: InferenceSession) -> None:
        self._session = session
        self._inputs: Dict[str, Tuple[str, Any]] = {}
        self._outputs: Dict[str, Tuple[str, Any]] = {}
        self._results: Dict[str, _BoundOutput] = {}

    def bind_input(self, name: str, device_type: str, device_id: int, element_type: Any, shape: Sequence[int],
                   buffer_ptr: int) -> None:
        self._check_dtype(name, element_type, self._session.engine.inputs)
        self._inputs[name] = (str(device_type), (tuple(int(d) for d in shape), int(buffer_ptr), int(device_id)))

    def bind_cpu_input(self, name: str, arr_on_cpu: np.ndarray) -> None:
        self._inputs[name] = ("array", np.ascontiguousarray(arr_on_cpu))

    def bind_output(self, name: str, device_type: str = "cpu", device_id: int = 0, element_type: Any = None,
                    shape: Optional[Sequence[int]] = None, buffer_ptr: Optional[int] = None) -> None:
        if element_type is not None:
            self._check_dtype(name, element_type, self._session.engine.outputs)
        if buffer_ptr is not None and shape is None:
            raise InvalidArgument(f"bind_output('{name}'): a buffer_ptr needs its shape")
        spec = None if buffer_ptr is None else (tuple(int(d) for d in shape), int(buffer_ptr), int(device_id))
        self._outputs[name] = (str(device_type), spec)

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        self._outputs.clear()

    def synchronize_inputs(self) -> None:
        pass  # runs are ordered on the stream kiln enqueues on

    def synchronize_outputs(self) -> None:
        pass  # run_with_iobinding returns once the outputs are written

    def get_outputs(self) -> List[_BoundOutput]:
        return [self._results[t.name] for t in self._session.engine.outputs if t.name in self._results]

    def copy_outputs_to_cpu(self) -> List[np.ndarray]:
        return [o.numpy() for o in self.get_outputs()]

    @staticmethod
    def _check_dtype(name: str, element_type: Any, infos: list) -> None:
        for t in infos:
            if t.name == name:
                given = np.dtype(element_type)
                if given != t.dtype:
                    raise InvalidArgument(f"'{name}' is {t.dtype_name} in the engine but was bound as {given}")
                return
        raise NotFound(f"the model has no tensor '{name}' of that kind; it has {[t.name for t in infos]}")

    def _run(self) -> None:
        engine = self._session.engine
        cuda = engine.backend == "cuda"
        kinds = {kind for kind, _ in self._inputs.values()}
        ctx = self._session._borrow()
        try:
            if kinds <= {"array"} or (not cuda and kinds <= {"array", "cpu"}):
                self._run_host(ctx, engine)
            elif cuda and kinds == {"cuda"}:
                self._run_device(ctx, engine)
            else:
                raise Unsupported(f"inputs bound on {sorted(kinds)} for a {engine.backend} engine; bind every input "
                                  "on the engine's device (or every one with bind_cpu_input)")
        finally:
            self._session._give_back(ctx)

    def _run_host(self, ctx: Any, engine: Engine) -> None:
        feeds = {}
        for name, (kind, spec) in self._inputs.items():
            if kind == "array":
                feeds[name] = spec
            else:
                shape, ptr, _ = spec
                info = next((t for t in engine.inputs if t.name == name), None)
                if info is None:
                    raise NotFound(f"the model has no input '{name}'")
                n = int(np.prod(shape, dtype=np.int64))
                buf = (ctypes.c_byte * (n * info.dtype.itemsize)).from_address(ptr)
                feeds[name] = np.frombuffer(buf, dtype=info.dtype, count=n).reshape(shape)
        result = ctx.infer(feeds)
        self._results = {}
        for name, value in result.items():
            kind, spec = self._outputs.get(name, ("cpu", None))
            if kind == "cuda":
                raise Unsupported(f"output '{name}' is bound on cuda but this run is on the host")
            if spec is not None:
                shape, ptr, _ = spec
                if tuple(shape) != value.shape:
                    raise InvalidArgument(f"output '{name}' is {value.shape} but was bound with shape {tuple(shape)}")
                ctypes.memmove(ptr, value.ctypes.data, value.nbytes)
                buf = (ctypes.c_byte * value.nbytes).from_address(ptr)
                value = np.frombuffer(buf, dtype=value.dtype).reshape(value.shape)
            self._results[name] = _BoundOutput(value, "cpu")

    def _run_device(self, ctx: Any, engine: Engine) -> None:
        for name, (_, (shape, ptr, _)) in self._inputs.items():
            ctx.set_input_shape(name, shape)
            ctx.set_tensor_address(name, ptr)
        allocated = {}
        for t in engine.outputs:
            kind, spec = self._outputs.get(t.name, ("cuda", None))
            if spec is not None:
                shape, ptr, _ = spec
                ctx.set_tensor_address(t.name, ptr, int(np.prod(shape, dtype=np.int64)) * t.dtype.itemsize)
                continue
            torch = sys.modules.get("torch")
            if torch is None:
                raise Unsupported(f"output '{t.name}' has no buffer_ptr; on a CUDA engine kiln allocates outputs "
                                  "with torch: import torch, or bind a buffer")
            buf = torch.empty(ctx.output_shape(t.name), dtype=getattr(torch, t.dtype_name), device="cuda")
            ctx.set_tensor_address(t.name, buf.data_ptr())
            allocated[t.name] = buf
        stream = _stream()
        ctx.enqueue(stream)
        _kiln.synchronize(stream)
        self._results = {}
        for t in engine.outputs:
            if t.name in allocated:
                self._results[t.name] = _BoundOutput(allocated[t.name], "cuda")
            else:
                shape, ptr, _ = self._outputs[t.name][1]
                self._results[t.name] = _BoundOutput(_DevicePointer(shape, ptr, t), "cuda")


class _DevicePointer:
    """A bound device output the caller owns; numpy() copies it to the host through torch."""

    def __init__(self, shape: Tuple[int, ...], ptr: int, info: Any) -> None:
        self.shape = shape
        self._ptr = ptr
        self._info = info

    def data_ptr(self) -> int:
        return self._ptr

    def detach(self) -> "_DevicePointer":
        return self

    def cpu(self) -> "_DevicePointer":
        return self

    def numpy(self) -> np.ndarray:
        out = np.empty(self.shape, dtype=self._info.dtype)
        _kiln.copy_device_to_host(out.ctypes.data, self._ptr, out.nbytes)
        return out
