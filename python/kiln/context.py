"""Running engines: ``kiln.ExecutionContext`` (numpy on the host, torch/DLPack tensors on the GPU)."""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from . import _kiln
from ._errors import InvalidArgument
from .engine import Engine


def _torch_module(value: Any) -> Any:
    """The torch module when VALUE is a torch tensor, without importing torch for numpy users."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return torch
    return None


# The dtypes kiln binds, by the names torch and numpy share; torch's dtype objects map to them once per torch.
_DTYPE_NAMES = ("float32", "float16", "bfloat16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                "uint32", "uint64", "bool")
_TORCH_DTYPE_NAMES: Dict[int, Dict[Any, str]] = {}


def _current_stream(torch: Any, device: Any) -> int:
    """torch's current CUDA stream on DEVICE as an int; the raw getter skips building a Stream object per call."""
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is not None and device.index is not None:
        return raw(device.index)
    return torch.cuda.current_stream(device).cuda_stream


class ExecutionContext:
    """Per-thread run state of an Engine: input shapes, bindings, activation memory.

    ``infer`` is the easy way; ``set_input_shape`` / ``set_tensor_address`` / ``enqueue`` give full control
    like the C++ API. A context runs one call at a time: give each thread its own (``engine.create_context()``);
    the GIL is released while the engine runs, so such threads run at the same time.
    """

    __slots__ = ("engine", "_native", "_out_torch_dtypes", "_input_names", "_input_dims", "_is_cuda", "_aliases")

    def __init__(self, engine: Engine, native: "_kiln.ExecutionContext") -> None:
        self.engine = engine
        self._native = native
        self._out_torch_dtypes: Optional[Dict[str, Any]] = None
        self._input_names = [t.name for t in engine.inputs]
        self._is_cuda = engine.backend == "cuda"  # read once: infer's hot path must not rebuild engine.info
        self._input_dims: Dict[str, tuple] = {}  # what set_input_shape was given, to size set_tensor_address
        self._aliases: Dict[str, str] = dict(engine.info["aliases"])  # output -> input (a KV cache in place)

    def infer(self, inputs: Mapping[str, Any], out: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Runs the engine on INPUTS ({name: array}) and returns {output name: array}.

        numpy arrays in, numpy arrays out (non-contiguous arrays are made contiguous; a wrong dtype is an
        error, never a silent cast). torch CUDA tensors in, torch CUDA tensors out on the same device, with
        no copy through the host, ordered on torch's current stream. torch CPU tensors are run through the
        host path and come back as torch CPU tensors. OUT ({name: array or tensor}) receives outputs in the
        caller's preallocated buffers (the same kind as the inputs); the returned dict holds them.

        With torch CUDA tensors, an aliased output (``engine.info["aliases"]``: a KV cache) that OUT does not
        name is written into its input's tensor, which the returned dict then holds: the cache is updated in
        place. numpy and CPU tensors get new arrays.
        """
        if type(inputs) is not dict and not isinstance(inputs, Mapping):
            raise InvalidArgument(f"inputs must be a dict of input name -> array, got {type(inputs).__name__}")
        first = next(iter(inputs.values()), None)
        torch = _torch_module(first)
        if torch is not None:
            if first.is_cuda:
                return self._infer_torch_cuda(torch, inputs, out)
            return self._infer_torch_host(torch, inputs, out)
        return self._native.infer_numpy(dict(inputs), None if out is None else dict(out))

    def _torch_dtypes(self, torch: Any) -> Dict[str, Any]:
        if self._out_torch_dtypes is None:
            self._out_torch_dtypes = {t.name: getattr(torch, t.dtype_name) for t in self.engine.outputs}
        return self._out_torch_dtypes

    def _torch_dtype_names(self, torch: Any) -> Dict[Any, str]:
        names = _TORCH_DTYPE_NAMES.get(id(torch))
        if names is None:
            names = {getattr(torch, n): n for n in _DTYPE_NAMES if hasattr(torch, n)}
            _TORCH_DTYPE_NAMES[id(torch)] = names
        return names

    def _infer_torch_cuda(self, torch: Any, inputs: Mapping[str, Any], out: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        # Tensors go to the native layer as (name, data_ptr, shape, dtype name, device index, contiguous): a few
        # attribute reads each, where a __dlpack__ export costs microseconds (the per-call overhead budget).
        dtype_names = self._torch_dtype_names(torch)
        tensor_type = torch.Tensor
        feeds = []
        keep = []  # contiguous copies made here live until the engine has been enqueued on torch's stream
        # input name -> the caller's tensor, for aliased outputs (a copy made here would not do); only engines
        # with aliases pay for it
        in_place = {} if self._aliases else None
        for name, t in inputs.items():
            if not isinstance(t, tensor_type):
                raise InvalidArgument(f"input '{name}' is a {type(t).__name__} but other inputs are torch tensors; "
                                      "pass all inputs as torch tensors")
            if not t.is_contiguous():
                t = t.contiguous()
                keep.append(t)
            elif in_place is not None:
                in_place[name] = t
            feeds.append((name, t.data_ptr(), t.shape, dtype_names.get(t.dtype) or str(t.dtype), t.get_device(), True))
        first = next(iter(inputs.values()))
        device = first.device
        if not self._is_cuda:
            raise InvalidArgument(f"the inputs are on {device} but this is a CPU engine; pass CPU tensors or numpy "
                                  "arrays, or build the engine with backend='cuda'")
        shapes = self._native.bind_input_pointers(feeds)
        dtypes = self._torch_dtypes(torch)
        result = {}
        outs = []
        for name, dims in shapes:
            if out is not None and name in out:
                t = out[name]
                if not isinstance(t, tensor_type):
                    raise InvalidArgument(f"out['{name}'] is a {type(t).__name__}; pass a torch tensor")
                if tuple(t.shape) != dims:
                    raise InvalidArgument(f"out['{name}'] has shape {tuple(t.shape)} but the output is {dims}")
            elif in_place is not None and self._aliases.get(name) in in_place:
                t = in_place[self._aliases[name]]
            else:
                t = torch.empty(dims, dtype=dtypes[name], device=device)
            result[name] = t
            outs.append((name, t.data_ptr(), t.shape, dtype_names.get(t.dtype) or str(t.dtype), t.get_device(),
                         t.is_contiguous()))
        if out is not None:
            for name in out:
                if name not in result:
                    raise _kiln_not_found(f"out: the engine has no output '{name}'; its outputs are "
                                          f"{[t.name for t in self.engine.outputs]}")
        self._native.bind_output_pointers_and_enqueue(outs, _current_stream(torch, device))
        return result

    def _infer_torch_host(self, torch: Any, inputs: Mapping[str, Any], out: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        # CPU tensors share memory with numpy; a CUDA engine copies them to the GPU itself (ExecutionContext::infer).
        arrays = {}
        for name, t in inputs.items():
            if not isinstance(t, torch.Tensor):
                raise InvalidArgument(f"input '{name}' is a {type(t).__name__} but other inputs are torch tensors")
            if t.is_cuda:
                raise InvalidArgument(f"input '{name}' is on {t.device} but other inputs are on the CPU; "
                                      "put all inputs on one device")
            if t.dtype == torch.bfloat16:
                raise InvalidArgument(f"input '{name}' is a bfloat16 CPU tensor, which numpy cannot hold; pass it "
                                      "on the GPU to a CUDA engine")
            arrays[name] = t.detach().numpy()
        out_arrays = None if out is None else {k: v.numpy() for k, v in out.items()}
        result = self._native.infer_numpy(arrays, out_arrays)
        return {k: (out[k] if out is not None and k in out else torch.from_numpy(v)) for k, v in result.items()}

    # Full control, as in C++ -------------------------------------------------------------------------------

    def set_profile(self, index: int) -> None:
        """Selects the optimization profile shapes are checked against."""
        self._native.set_profile(index)

    @property
    def profile(self) -> int:
        """The active optimization profile."""
        return self._native.profile()

    def set_input_shape(self, name: str, dims: Sequence[int]) -> None:
        """Concrete dims for one input; an error names the input, dim and allowed range."""
        dims = tuple(int(d) for d in dims)
        self._native.set_input_shape(name, list(dims))
        self._input_dims[name] = dims

    def output_shape(self, name: str) -> tuple:
        """An output's dims for the current input shapes."""
        return self._native.output_shape(name)

    def set_tensor_address(self, name: str, address: int, nbytes: Optional[int] = None) -> None:
        """Binds a caller-owned buffer for ``enqueue``: host memory on a CPU engine, device memory on CUDA.

        NBYTES is the buffer's capacity; without it, the size of the tensor at the current shapes is assumed
        (set input shapes first).
        """
        if nbytes is None:
            nbytes = self._size_at_current_shape(name)
        self._native.set_tensor_address(name, int(address), int(nbytes))

    def _size_at_current_shape(self, name: str) -> int:
        infos = {t.name: t for t in self.engine.inputs + self.engine.outputs}
        if name not in infos:
            raise _kiln_not_found(f"the engine has no tensor '{name}'; inputs: {self._input_names}; outputs: "
                                  f"{[t.name for t in self.engine.outputs]}")
        info = infos[name]
        if name in self._input_names:
            dims = self._bound_input_dims(name, info)
        else:
            dims = self.output_shape(name)
        return int(np.prod(dims, dtype=np.int64)) * info.dtype.itemsize

    def _bound_input_dims(self, name: str, info: Any) -> tuple:
        if name in self._input_dims:
            return self._input_dims[name]
        if info.shape is not None and all(isinstance(d, int) for d in info.shape):
            return tuple(info.shape)
        raise InvalidArgument(f"input '{name}' has no shape yet; call set_input_shape('{name}', dims) first or "
                              "pass nbytes")

    def enqueue(self, stream: int = 0) -> None:
        """Runs with the bound buffers on STREAM (a cudaStream_t as int, e.g.
        ``torch.cuda.current_stream().cuda_stream``; ignored by CPU engines, which run synchronously)."""
        self._native.enqueue(int(stream))

    def last_run_info(self) -> Dict[str, Any]:
        """How the last run executed: cuda_graph, arena, not_captured (why not), arena_bytes, node placement,
        and (CUDA) the shape plans held: cached_plans of at most plan_cache_limit, and value_keyed_inputs, the
        small integer inputs whose values key the plans (see docs/architecture.md)."""
        return self._native.last_run_info()

    def set_cuda_graphs(self, enabled: bool) -> None:
        """CUDA engines: capture and replay a CUDA graph per input shape (on by default)."""
        self._native.set_cuda_graphs(bool(enabled))

    def set_device_memory_limit(self, nbytes: int) -> None:
        """Caps the device memory this context may hold (0: no cap)."""
        self._native.set_device_memory_limit(int(nbytes))

    @property
    def device_memory_bytes(self) -> int:
        """Device bytes this context holds now (activation arena and scratch), not counting weights."""
        return self._native.device_memory_bytes()


def _kiln_not_found(message: str) -> Exception:
    from ._errors import NotFound

    return NotFound(message)
