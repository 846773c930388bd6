"""kiln.inspect: what a model or an engine holds, as the document ``kiln inspect --json`` prints."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Sequence, Union

from . import _kiln
from .engine import PathLike, ShapeSpec, _normalize_shapes


def inspect(path: PathLike, *, member: int = 0, placement: bool = False, layers: bool = False,
            shapes: Union[None, ShapeSpec, Sequence[ShapeSpec]] = None, dot: Optional[PathLike] = None,
            svg: Optional[PathLike] = None) -> Dict[str, Any]:
    """I/O, op histogram and parameters of an ONNX model (``.onnx``) or engine (``.kiln``), as a dict.

    An engine (or a model with ``layers=True``) also has its layers after fusion (``"layers"``) and memory plan
    (``"memory"``); ``placement=True`` predicts where the CUDA backend runs each node (needs a kiln built with
    CUDA, not a GPU); ``shapes`` (as for ``kiln.build``) sets the dims the memory plan and placement use;
    ``dot``/``svg`` write pictures of the graph after fusion; ``member`` picks a bundle's engine.
    docs/inspect.md describes the keys. Errors raise ``kiln.Error`` subclasses.
    """
    document = _kiln.inspect_json(os.fspath(path), int(member), bool(placement), bool(layers),
                                  _normalize_shapes(shapes), os.fspath(dot) if dot else "",
                                  os.fspath(svg) if svg else "")
    return json.loads(document)
