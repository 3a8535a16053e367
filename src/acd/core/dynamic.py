"""Dynamic amateur layer (DoLa-style, Chuang et al. 2023): per token, contrast with the candidate
exit whose next-token distribution is furthest from the expert's, by Jensen-Shannon divergence."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def jensen_shannon(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """JSD(p || q) in nats over the last dimension, from log-probabilities (0 <= JSD <= log 2)."""
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    kl_pm = (log_p.exp() * (log_p - log_m)).nan_to_num(0.0).sum(-1)
    kl_qm = (log_q.exp() * (log_q - log_m)).nan_to_num(0.0).sum(-1)
    return 0.5 * (kl_pm + kl_qm)


def select_amateur(expert_logits: torch.Tensor, candidate_logits: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate logits with the largest JSD from the expert at each position, and its index."""
    expert = torch.log_softmax(expert_logits.float(), dim=-1)
    stacked = torch.stack([torch.log_softmax(c.float(), dim=-1) for c in candidate_logits])  # [C, ..., V]
    divergence = jensen_shannon(expert.unsqueeze(0), stacked)  # [C, ...]
    choice = divergence.argmax(0)  # [...]
    index = choice.unsqueeze(0).unsqueeze(-1).expand(1, *stacked.shape[1:])
    return stacked.gather(0, index).squeeze(0), choice
