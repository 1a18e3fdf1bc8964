"""Package attributes loaded on first use (PEP 562), so that importing a package stays light.

Example (a package's ``__init__.py``):
    >>> _LAZY = {"Transcriber": "speechseq.asr.transcriber"}
    >>> __getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module-level ``__getattr__`` and ``__dir__``.

    Args:
        package: the package's name, for the error of a name it does not have.
        table: attribute name → the module that defines it.
        namespace: the package's ``globals()``; each attribute is stored there once loaded, so
            later look-ups skip ``__getattr__``.
    """

    def __getattr__(name: str) -> Any:
        if name in table:
            value = getattr(importlib.import_module(table[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
