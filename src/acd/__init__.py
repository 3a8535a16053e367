"""Auto-contrastive Decoding (Gera et al., ACL 2023): contrast a model's final layer with an earlier exit."""

from acd.core.contrast import acd_log_probs
from acd.errors import UsageError
from acd.core.heads import ExitHeads, HeadsConfig
from acd.core.loading import load
from acd.core.model import Contrast, Exit, make_auto_contrastive

__all__ = ["Contrast", "Exit", "ExitHeads", "HeadsConfig", "UsageError", "acd_log_probs", "load", "make_auto_contrastive"]
__version__ = "0.1.0"
