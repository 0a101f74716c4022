"""Run a code block of docs/api.md as a module: the docs' examples are tests."""

from __future__ import annotations

import contextlib
import pathlib
import sys
import types
from collections.abc import Iterator

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api.md"


@contextlib.contextmanager
def doc_module(name: str, code: str) -> Iterator[types.ModuleType]:
    """Execute ``code`` (taken from :data:`DOC`) as the module ``name``.

    The module is registered in ``sys.modules`` while in use, because dataclasses
    (flax structs) look their defining module up, and removed afterwards.
    """
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(code, str(DOC), "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[name]
