"""Auto-contrastive Decoding (Gera et al., ACL 2023): contrast a model's final layer with an earlier exit.

The public names load on first use, so a stage process pays only for the modules it runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "Contrast": "acd.core.model",
    "ContrastSpec": "acd.core.spec",
    "Exit": "acd.core.model",
    "ExitHeads": "acd.core.heads",
    "HeadsConfig": "acd.core.heads",
    "UsageError": "acd.errors",
    "acd_log_probs": "acd.core.contrast",
    "load": "acd.core.loading",
    "make_auto_contrastive": "acd.core.model",
}
__all__ = [
    "Contrast", "ContrastSpec", "Exit", "ExitHeads", "HeadsConfig", "UsageError", "acd_log_probs", "load",
    "make_auto_contrastive",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from acd.core.contrast import acd_log_probs
    from acd.core.heads import ExitHeads, HeadsConfig
    from acd.core.loading import load
    from acd.core.model import Contrast, Exit, make_auto_contrastive
    from acd.core.spec import ContrastSpec
    from acd.errors import UsageError


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'acd' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
