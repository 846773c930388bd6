"""``kiln.from_torch``: a torch module exported to ONNX, built by kiln, callable with torch tensors."""

from __future__ import annotations

import inspect
import os
import tempfile
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._errors import Error, InvalidArgument
from .engine import Engine, build


class ExportError(Error):
    """torch's ONNX exporter failed; the message holds the exporter's own and what to try."""

    code = "export"


_ADVICE = ("what to try: pass example_inputs as a tuple of tensors matching forward(); make forward() return a "
           "tensor or a tuple of tensors (wrap modules that return dicts or dataclasses); replace Python control "
           "flow that depends on tensor values; or export yourself with torch.onnx.export and call kiln.build")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InvalidArgument("kiln.from_torch needs torch, which is not installed here") from None
    return torch


def _input_names(module: Any, count: int, given: Optional[Sequence[str]]) -> List[str]:
    if given is not None:
        if len(given) != count:
            raise InvalidArgument(f"input_names has {len(given)} names for {count} example inputs")
        return list(given)
    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return params[:count] if len(params) >= count else [f"input_{i}" for i in range(count)]


def _dynamic_axes(spec: Any, names: List[str]) -> Dict[str, Dict[int, str]]:
    """Reads dynamic_shapes: {input name or index: {axis: "symbol"} or [axes]}, or True for a dynamic batch
    (axis 0) on every input. torch.export.Dim values are named by their __name__."""
    if not spec:
        return {}
    if spec is True:
        return {n: {0: "batch"} for n in names}
    if isinstance(spec, (list, tuple)):
        spec = dict(enumerate(spec))
    if not isinstance(spec, Mapping):
        raise InvalidArgument(f"dynamic_shapes must be a dict of input -> {{axis: name}}, got {type(spec).__name__}")
    axes: Dict[str, Dict[int, str]] = {}
    for key, value in spec.items():
        name = names[key] if isinstance(key, int) and 0 <= key < len(names) else key
        if name not in names:
            raise InvalidArgument(f"dynamic_shapes names '{key}', which is not an input; inputs are {names}")
        if value is None:
            continue
        if isinstance(value, Mapping):
            axes[name] = {int(a): (d if isinstance(d, str) else getattr(d, "__name__", f"{name}_dim{a}"))
                          for a, d in value.items()}
        else:
            axes[name] = {int(a): f"{name}_dim{a}" for a in value}
    return axes


def _export(torch: Any, module: Any, example: Tuple[Any, ...], path: str, names: List[str], outputs: List[str],
            axes: Dict[str, Dict[int, str]], opset_version: Optional[int]) -> None:
    kwargs: Dict[str, Any] = {"input_names": names, "output_names": outputs}
    if axes:
        kwargs["dynamic_axes"] = axes
    if opset_version is not None:
        kwargs["opset_version"] = opset_version
    errors = []
    attempts = [{}]
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        attempts.append({"dynamo": False})  # the TorchScript exporter takes some modules the new one does not
    for extra in attempts:
        try:
            with torch.no_grad():
                torch.onnx.export(module, example, path, **kwargs, **extra)
            return
        except Exception as e:  # the exporters raise many types; all are reported
            errors.append(f"{'torch.onnx.export' + (' (dynamo=False)' if extra else '')}: {type(e).__name__}: {e}")
    raise ExportError(f"exporting {type(module).__name__} to ONNX failed.\n" + "\n".join(errors) + "\n" + _ADVICE)


class TorchEngine:
    """What ``kiln.from_torch`` returns: call it like the module (positional tensors in, a tensor or a tuple
    of tensors out, on the inputs' device). Each thread gets its own ExecutionContext. ``engine`` is the
    kiln.Engine, to save or inspect."""

    def __init__(self, engine: Engine, input_names: List[str], output_names: List[str], single_output: bool) -> None:
        self.engine = engine
        self.input_names = input_names
        self.output_names = output_names
        self._single = single_output
        self._local = threading.local()

    def __call__(self, *args: Any) -> Any:
        if len(args) != len(self.input_names):
            raise InvalidArgument(f"expected {len(self.input_names)} inputs ({', '.join(self.input_names)}), got {len(args)}")
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = self._local.ctx = self.engine.create_context()
        result = ctx.infer(dict(zip(self.input_names, args)))
        outs = tuple(result[n] for n in self.output_names)
        return outs[0] if self._single else outs


def from_torch(module: Any, example_inputs: Union[Any, Sequence[Any]], *, dynamic_shapes: Any = None,
               fp16: bool = False, bf16: bool = False, shapes: Any = None, input_names: Optional[Sequence[str]] = None,
               output_names: Optional[Sequence[str]] = None, opset_version: Optional[int] = None,
               backend: str = "auto", progress: bool = False, **build_options: Any) -> TorchEngine:
    """Exports MODULE with torch's ONNX exporter (to a temporary file), builds it with kiln and returns a
    callable taking and returning torch tensors like the module.

    example_inputs: a tensor or a tuple of tensors, as forward() takes them.
    dynamic_shapes: {input name or index: {axis: "symbol"}} (torch's dynamic_axes form; torch.export.Dim
        values work too), a list per input, or True for a dynamic batch axis on every input.
    fp16 / bf16: reduced-precision engine (CUDA); shapes: optimization profiles as in ``kiln.build``.
    Other keyword arguments go to ``kiln.build``.
    """
    torch = _import_torch()
    example = tuple(example_inputs) if isinstance(example_inputs, (list, tuple)) else (example_inputs,)
    names = _input_names(module, len(example), input_names)
    axes = _dynamic_axes(dynamic_shapes, names)
    was_training = getattr(module, "training", False)
    module.eval()
    try:
        try:
            with torch.no_grad():
                sample = module(*example)
        except Exception as e:
            raise ExportError(f"{type(module).__name__}(*example_inputs) failed before export: {type(e).__name__}: "
                              f"{e}\n" + _ADVICE) from None
        single = isinstance(sample, torch.Tensor)
        n_out = 1 if single else len(sample) if isinstance(sample, (list, tuple)) else 0
        if n_out == 0:
            raise ExportError(f"{type(module).__name__} returns a {type(sample).__name__}; " + _ADVICE)
        outs = list(output_names) if output_names is not None else [f"output_{i}" for i in range(n_out)]
        if axes:
            # Outputs follow the inputs' first symbolic batch axis, the common case; other output axes stay as
            # the exporter infers them.
            batch = next((d[0] for d in axes.values() if 0 in d), None)
            if batch is not None:
                for o in outs:
                    axes.setdefault(o, {0: batch})
        with tempfile.TemporaryDirectory(prefix="kiln_from_torch_") as tmp:
            path = os.path.join(tmp, "model.onnx")
            _export(torch, module, example, path, names, outs, axes, opset_version)
            engine = build(path, backend=backend, fp16=fp16, bf16=bf16, shapes=shapes, progress=progress,
                           **build_options)
    finally:
        if was_training:
            module.train()
    return TorchEngine(engine, names, outs, single)
