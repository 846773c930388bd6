"""kiln: ONNX models compiled into fast inference engines, and run.

    import kiln
    engine = kiln.build("model.onnx", shapes={"x": [(1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224)]})
    ctx = engine.create_context()
    outputs = ctx.infer({"x": array})          # numpy in/out, or torch CUDA tensors in/out

``kiln.InferenceSession`` is ONNX Runtime's session API on kiln; ``kiln.from_torch`` builds a torch module.
Errors are ``kiln.Error`` subclasses carrying kiln's message. docs/python.md documents the package.
"""

try:
    from . import _kiln
except ImportError as _e:  # say what to do, not "partially initialized module"
    raise ImportError(
        f"kiln's native module could not be loaded from {__path__[0]} ({_e}). Build it (cmake --build build "
        "--target kiln_python) and import from the build tree (PYTHONPATH=build/python), or pip install ./python; "
        "a CUDA build also needs cuDNN/cuBLAS on LD_LIBRARY_PATH.") from _e
from ._errors import (Error, Internal, InvalidArgument, InvalidEngine, InvalidModel, IoError, NotFound, OutOfMemory,
                      OutOfRange, Unsupported)
from ._errors import register as _register_errors

# StatusCodes newer than this file get classes named after them (kiln.<Name>).
globals().update(_register_errors(_kiln))

from .context import ExecutionContext  # noqa: E402
from .engine import Engine, ProfileRange, TensorInfo, build, bundle  # noqa: E402
from .inspection import inspect  # noqa: E402
from .session import InferenceSession, IOBinding, NodeArg  # noqa: E402
from .torch_bridge import ExportError, TorchEngine, from_torch  # noqa: E402

__version__: str = _kiln.__version__


def cuda_available() -> bool:
    """True when this kiln has its CUDA backend and a GPU it can use is present."""
    return _kiln.has_cuda() and not _kiln.cuda_unavailable_reason()


def cuda_unavailable_reason() -> str:
    """Why kiln's CUDA backend cannot run here, in one sentence ("" when it can)."""
    return _kiln.cuda_unavailable_reason()


__all__ = [
    "build", "bundle", "inspect", "Engine", "ExecutionContext", "TensorInfo", "ProfileRange", "InferenceSession", "IOBinding", "NodeArg",
    "from_torch", "TorchEngine", "cuda_available", "cuda_unavailable_reason", "Error", "InvalidArgument", "NotFound",
    "InvalidModel", "Unsupported", "InvalidEngine", "OutOfRange", "IoError", "Internal", "OutOfMemory", "ExportError",
]
