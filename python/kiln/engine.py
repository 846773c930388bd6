"""Building, loading and describing engines: ``kiln.build``, ``kiln.Engine``."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _kiln
from ._errors import InvalidArgument

PathLike = Union[str, "os.PathLike[str]"]
Dims = Sequence[int]
# {"x": [(1,3,224,224), (8,3,224,224), (32,3,224,224)]}: min, opt, max per input; a single shape fixes it.
ShapeSpec = Mapping[str, Union[Sequence[Dims], Dims]]


class ProfileRange(NamedTuple):
    """The dims one optimization profile allows for an input: every run's dims lie within min..max."""

    min: Tuple[int, ...]
    opt: Tuple[int, ...]
    max: Tuple[int, ...]


class TensorInfo(NamedTuple):
    """An engine input or output. ``shape`` holds ints for static dims and strings for symbolic ones
    (``("batch", 3, 224, 224)``), or is None when the rank is unknown. ``profiles`` has one ProfileRange per
    optimization profile for inputs the profiles cover (empty for outputs)."""

    name: str
    dtype: np.dtype
    shape: Optional[Tuple[Union[int, str], ...]]
    profiles: Tuple[ProfileRange, ...]
    dtype_name: str  # "float32", "float16", "bfloat16", "int64", "bool"...


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        try:
            import ml_dtypes  # type: ignore

            return np.dtype(ml_dtypes.bfloat16)
        except ImportError:
            return np.dtype(np.uint16)  # the raw bits; numpy itself has no bfloat16
    return np.dtype(name)


def _progress_printer() -> Callable[[str], None]:
    start = time.monotonic()

    def show(line: str) -> None:
        # The CLI's format, so Python and `kiln build` builds read the same.
        sys.stderr.write(f"[kiln {1000 * (time.monotonic() - start):8.1f} ms] {line}\n")
        sys.stderr.flush()

    return show


def _normalize_shapes(shapes: Union[None, ShapeSpec, Sequence[ShapeSpec]]) -> List[Dict[str, List[List[int]]]]:
    if shapes is None:
        return []
    profiles = [shapes] if isinstance(shapes, Mapping) else list(shapes)
    out = []
    for i, prof in enumerate(profiles):
        if not isinstance(prof, Mapping):
            raise InvalidArgument(f"shapes[{i}] must be a dict of input name -> (min, opt, max), got {type(prof).__name__}")
        norm = {}
        for name, spec in prof.items():
            spec = list(spec)
            if spec and all(isinstance(d, (int, np.integer)) for d in spec):
                spec = [spec, spec, spec]  # one shape: min = opt = max
            if len(spec) != 3:
                raise InvalidArgument(f"shapes['{name}'] must be (min, opt, max) shapes or one shape, got {spec!r}")
            try:
                norm[str(name)] = [[int(d) for d in s] for s in spec]
            except (TypeError, ValueError):
                raise InvalidArgument(f"shapes['{name}'] must hold shapes of ints, got {spec!r}") from None
        out.append(norm)
    return out


def build(model: Union[PathLike, bytes, Any], *, backend: str = "auto", fp16: bool = False, bf16: bool = False,
          tf32: bool = False, shapes: Union[None, ShapeSpec, Sequence[ShapeSpec]] = None,
          fp32_layers: Iterable[str] = (), timing_cache: Optional[PathLike] = None,
          progress: Union[bool, Callable[[str], None]] = True, reduced_precision_io: bool = False,
          tactic_timing: bool = True, cuda_graphs: bool = True, allow_cpu_fallback: bool = True,
          aliases: Optional[Dict[str, str]] = None, auto_alias: bool = True,
          base_dir: Optional[PathLike] = None, bundle: bool = False) -> "Engine":
    """Builds an engine from an ONNX model.

    model: a path to a .onnx file, the ONNX bytes, or an ``onnx.ModelProto``.
    backend: "auto" (CUDA when a usable GPU is present, else CPU), "cpu" or "cuda".
    fp16 / bf16 / tf32: reduced-precision compute (CUDA); f32 by default, TF32 off.
    shapes: optimization profile(s): ``{"x": [min, opt, max]}`` per dynamic input (a single shape fixes the
        input), or a list of such dicts for several profiles.
    fp32_layers: with fp16/bf16, node names that keep computing in f32.
    timing_cache: a file of timed tactic choices, read before and rewritten after the build.
    progress: True prints the build stages to stderr as ``kiln build`` does; False is silent; a callable
        receives each line.
    allow_cpu_fallback: CUDA engines: False makes a node with no CUDA kernel for its op or dtypes a build error
        (by default it runs on the CPU reference and the build names it with why).
    aliases: ``{output: input}``: the output is written into the input's buffer (a KV cache updated in place;
        same dtype and shape). With auto_alias, outputs named like a cache's next state (``present.N...`` for
        ``past_key_values.N...`` or ``past.N...``) are paired too. See docs/kv_cache.md.
    base_dir: where external-data files of ONNX bytes live (default: the current directory).
    bundle: build each profile of ``shapes`` (a list of two or more) as its own engine and return their bundle
        (``kiln build --bundle``): each call runs on the one whose profile fits its shapes. See ``kiln.bundle``.
    """
    if sum(bool(f) for f in (fp16, bf16, tf32)) > 1:
        raise InvalidArgument("pick at most one of fp16, bf16, tf32")
    precision = "f16" if fp16 else "bf16" if bf16 else "tf32" if tf32 else "f32"
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    is_bytes = isinstance(model, (bytes, bytearray, memoryview))
    if is_bytes:
        source: Any = bytes(model)
    elif isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
    else:
        raise InvalidArgument(f"model must be a path, ONNX bytes or an onnx.ModelProto, got {type(model).__name__}")
    callback = _progress_printer() if progress is True else (progress or None)
    profiles = _normalize_shapes(shapes)
    if bundle:
        if len(profiles) < 2:
            raise InvalidArgument("bundle=True needs two or more profiles in shapes (a list of {input: [min, opt, "
                                  f"max]}} dicts, one engine each); got {len(profiles)}")
        members = []
        for k, profile in enumerate(profiles):
            if callback:
                callback(f"bundle member {k + 1} of {len(profiles)}")
            members.append(build(source, backend=backend, fp16=fp16, bf16=bf16, tf32=tf32,
                                 shapes=[profile], fp32_layers=fp32_layers, timing_cache=timing_cache,
                                 progress=callback or False, reduced_precision_io=reduced_precision_io,
                                 tactic_timing=tactic_timing, cuda_graphs=cuda_graphs,
                                 allow_cpu_fallback=allow_cpu_fallback, aliases=aliases, auto_alias=auto_alias,
                                 base_dir=base_dir))
        return Engine(_kiln.Engine.bundle([m._native for m in members]))
    native = _kiln.build(source, is_bytes, os.fspath(base_dir) if base_dir is not None else ".", backend, precision,
                         [str(n) for n in fp32_layers], profiles,
                         os.fspath(timing_cache) if timing_cache is not None else "", reduced_precision_io,
                         tactic_timing, cuda_graphs, allow_cpu_fallback,
                         [(str(o), str(i)) for o, i in (aliases or {}).items()], auto_alias, callback)
    return Engine(native)


def bundle(engines: Sequence["Engine"]) -> "Engine":
    """One engine made of several engines of one model (per shape range, per precision): each call of its
    contexts runs on the member whose profile fits the input shapes best (the smallest that takes them; a tie
    goes to the earlier one), and weights with equal bytes are stored and uploaded once. The members must share
    backend, input and output names and dtypes. ``save`` writes one file; docs/bundles.md has the details."""
    return Engine(_kiln.Engine.bundle([e._native for e in engines]))


class Engine:
    """A compiled model: immutable, shared by threads. Create one ExecutionContext per thread to run it.

    Make one with ``kiln.build(...)``, ``Engine.load(path)`` or ``Engine.deserialize(data)``.
    """

    __slots__ = ("_native", "_inputs", "_outputs")

    def __init__(self, native: "_kiln.Engine") -> None:
        self._native = native
        self._inputs: Optional[List[TensorInfo]] = None
        self._outputs: Optional[List[TensorInfo]] = None

    @classmethod
    def load(cls, source: Union[PathLike, io.BufferedIOBase, Any]) -> "Engine":
        """Loads a .kiln engine file (a path, or an open binary file object)."""
        if hasattr(source, "read"):
            try:
                data = source.read()
            except ValueError as e:  # "I/O operation on closed file"
                raise InvalidArgument(f"cannot read the engine from {source!r}: {e}; pass an open file or a path") from None
            if not isinstance(data, (bytes, bytearray)):
                raise InvalidArgument("the engine file object must be opened in binary mode ('rb')")
            return cls.deserialize(bytes(data))
        return cls(_kiln.Engine.load(os.fspath(source)))

    @classmethod
    def deserialize(cls, data: bytes) -> "Engine":
        """An engine from the bytes of a .kiln file (``serialize()`` gives them)."""
        return cls(_kiln.Engine.deserialize(bytes(data)))

    def save(self, path: PathLike) -> None:
        """Writes the engine to PATH (via PATH.tmp and a rename: a failed save leaves no partial file)."""
        self._native.save(os.fspath(path))

    def serialize(self) -> bytes:
        """The engine file's bytes."""
        return self._native.serialize()

    def _describe(self, rows: list, with_profiles: bool) -> List[TensorInfo]:
        profiles = self._native.profiles() if with_profiles else []
        out = []
        for name, dtype_name, shape in rows:
            ranges = tuple(ProfileRange(*p[name]) for p in profiles if name in p)
            out.append(TensorInfo(name, _numpy_dtype(dtype_name), shape, ranges, dtype_name))
        return out

    @property
    def inputs(self) -> List[TensorInfo]:
        """The inputs: name, numpy dtype, shape (symbolic dims as strings), profile ranges."""
        if self._inputs is None:
            self._inputs = self._describe(self._native.inputs(), True)
        return list(self._inputs)

    @property
    def outputs(self) -> List[TensorInfo]:
        """The outputs: name, numpy dtype, shape (symbolic dims as strings)."""
        if self._outputs is None:
            self._outputs = self._describe(self._native.outputs(), False)
        return list(self._outputs)

    @property
    def profiles(self) -> List[Dict[str, ProfileRange]]:
        """The optimization profiles: per profile, input name -> ProfileRange(min, opt, max)."""
        return [{k: ProfileRange(*v) for k, v in p.items()} for p in self._native.profiles()]

    @property
    def backend(self) -> str:
        """"cpu" or "cuda"."""
        return self._native.info()["backend"]

    @property
    def info(self) -> Dict[str, Any]:
        """The engine's manifest as a dict: kiln and format version, backend, precision, I/O, profiles, GPU and
        library versions of CUDA engines; a loaded engine adds what its file's manifest holds (sections,
        tactics, checksum). Also ``num_nodes``, ``weight_bytes`` and ``op_histogram``."""
        raw = self._native.info()
        info: Dict[str, Any] = {k: raw[k] for k in ("kiln_version", "format_version", "backend", "precision",
                                                    "fp32_layers", "cuda_graphs", "num_nodes", "weight_bytes",
                                                    "tactics", "op_histogram", "aliases", "bundle_members")}
        info["inputs"] = [{"name": t.name, "dtype": t.dtype_name, "shape": list(t.shape) if t.shape else t.shape}
                          for t in self.inputs]
        info["outputs"] = [{"name": t.name, "dtype": t.dtype_name, "shape": list(t.shape) if t.shape else t.shape}
                           for t in self.outputs]
        info["profiles"] = [{k: {"min": list(r.min), "opt": list(r.opt), "max": list(r.max)} for k, r in p.items()}
                            for p in self.profiles]
        if raw["gpu_json"]:
            info["gpu"] = json.loads(raw["gpu_json"])
        manifest = json.loads(raw["manifest_json"]) if raw["manifest_json"] else {}
        info.update({k: v for k, v in manifest.items() if k not in ("inputs", "outputs", "profiles")})
        if isinstance(info.get("tactics"), dict):  # the file stores tactic key -> choice; info reports the count
            info["tactics"] = len(info["tactics"])
        return info

    @property
    def members(self) -> List["Engine"]:
        """A bundle's member engines in routing order (``kiln.bundle``, ``kiln build --bundle``); [] for an engine."""
        return [Engine(m) for m in self._native.members()]

    def create_context(self) -> "ExecutionContext":
        """A new ExecutionContext: per-thread shapes, bindings and activation memory."""
        from .context import ExecutionContext

        return ExecutionContext(self, self._native.create_context())

    def __repr__(self) -> str:
        ins = ", ".join(f"{t.name}: {t.dtype_name}{list(t.shape) if t.shape is not None else '[?]'}" for t in self.inputs)
        outs = ", ".join(f"{t.name}: {t.dtype_name}{list(t.shape) if t.shape is not None else '[?]'}"
                         for t in self.outputs)
        return f"<kiln.Engine {self.backend} ({ins}) -> ({outs})>"
