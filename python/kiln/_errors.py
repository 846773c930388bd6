"""kiln's exceptions: one ``kiln.Error`` subclass per C++ ``kiln::StatusCode``, carrying the C++ message."""

from __future__ import annotations

from typing import Dict, Type


class Error(RuntimeError):
    """Base class of every error kiln raises. ``str(e)`` is kiln's message: it names the node, op, tensor or
    shape involved and says what to do. ``e.code`` is the C++ StatusCode's name ("invalid argument")."""

    code = "error"


class InvalidArgument(Error, ValueError):
    """The caller passed something wrong: an unknown input name, a missing input, a wrong dtype or rank."""

    code = "invalid argument"


class NotFound(Error, LookupError):
    """A file, input, output or tensor name does not exist."""

    code = "not found"


class InvalidModel(Error):
    """The ONNX model is malformed."""

    code = "invalid model"


class Unsupported(Error):
    """The model is valid but kiln cannot do it (yet): an unknown op, a dtype without kernels..."""

    code = "unsupported"


class InvalidEngine(Error):
    """The engine file is corrupt, truncated, or was built for another GPU or kiln version."""

    code = "invalid engine"


class OutOfRange(Error, ValueError):
    """A shape outside the engine's optimization profile."""

    code = "out of range"


class IoError(Error, OSError):
    """Reading or writing a file failed."""

    code = "i/o error"


class Internal(Error):
    """A bug in kiln; the message says where. Please report it."""

    code = "internal error"


class OutOfMemory(Error, MemoryError):
    """An allocation failed, or would pass a memory cap set on the context."""

    code = "out of memory"


_BY_NAME: Dict[str, Type[Error]] = {
    cls.code: cls
    for cls in (InvalidArgument, NotFound, InvalidModel, Unsupported, InvalidEngine, OutOfRange, IoError, Internal,
                OutOfMemory)
}


def _class_name(code_name: str) -> str:
    return "".join(w.capitalize() for w in code_name.replace("/", " ").split())


def register(native) -> Dict[str, Type[Error]]:
    """Hands the classes to the native module, one per StatusCode it has. A code this file does not know yet
    (added in C++ later) gets a class named after it, so its errors still arrive as kiln.Error."""
    by_code = {}
    extra: Dict[str, Type[Error]] = {}
    for value, name in native._status_codes():
        cls = _BY_NAME.get(name)
        if cls is None:
            cls = type(_class_name(name), (Error,), {"code": name, "__doc__": f"kiln StatusCode '{name}'."})
            extra[cls.__name__] = cls
        by_code[value] = cls
    native._set_error_classes(by_code, Error, OutOfMemory)
    return extra
