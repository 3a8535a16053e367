"""The auto-contrastive next-token distribution (Gera et al. 2023, Eqs. 1-5).

Pure tensor code, checkable line by line against the paper:

1. plausible set   V_head = {v : p_EXP(v) >= alpha * max p_EXP}      (Eq. 1)
2. contrast score  S(v) = log p_EXP(v) - log p_AMA(v), v in V_head    (Eq. 2)
3. redistribution  softmax_{V_head}(S) * sum_{u in V_head} p_EXP(u)   (Eq. 4)
4. every other token keeps p_EXP(v)                                   (Eqs. 3, 5)

Everything runs in log space and in float32 at least, so the result stays finite and
normalised where the reference code's log(softmax(.)) turns an underflowing amateur
probability into NaN.
"""

from __future__ import annotations

import math

import torch

from acd.core.spec import check_alpha, check_min_candidates

__all__ = ["acd_log_probs", "compute_dtype"]


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 stays float64; everything else (float32, float16, bfloat16) computes in float32."""
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return torch.float64 if dtype == torch.float64 else torch.float32


def plausible_mask(expert_log_probs: torch.Tensor, alpha: float, min_candidates: int = 1) -> torch.Tensor:
    """V_head of Eq. 1 (inclusive), widened to the ``min_candidates`` most probable tokens."""
    top = expert_log_probs.amax(dim=-1, keepdim=True)
    threshold = top + (math.log(alpha) if alpha > 0 else -math.inf)
    if min_candidates > 1:
        k = min(min_candidates, expert_log_probs.shape[-1])
        kth = expert_log_probs.topk(k, dim=-1).values[..., -1:]
        threshold = torch.minimum(threshold, kth)
    return expert_log_probs >= threshold


def acd_log_probs(
    expert_logits: torch.Tensor,
    amateur_logits: torch.Tensor,
    alpha: float = 0.1,
    min_candidates: int = 1,
    keep_tail: bool = True,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-probabilities of p_ACD over the last dimension, of the broadcast shape.

    ``keep_tail=False`` gives Li et al.'s contrastive decoding instead: tokens outside
    V_head get -inf and the plausible tokens share all the mass by their contrast score.
    ``out`` receives the result (it may be ``expert_logits`` itself, which is read first).
    """
    alpha = check_alpha(alpha)
    min_candidates = check_min_candidates(min_candidates)
    dtype = compute_dtype(expert_logits, amateur_logits)
    expert = torch.log_softmax(expert_logits.to(dtype), dim=-1)
    expert, amateur = torch.broadcast_tensors(expert, amateur_logits.to(dtype))

    plausible = plausible_mask(expert, alpha, min_candidates)
    # S = log p_EXP - log p_AMA, where log p_AMA = amateur - logsumexp(amateur). That normaliser is one
    # number per row and Eq. 4's softmax over V_head cancels it, so raw amateur logits give the same
    # distribution without a second vocabulary-wide log_softmax. An amateur probability of exactly
    # zero (a -inf logit) would make S = +inf and the softmax NaN; the smallest finite logit keeps
    # such a token the contrast's clear winner.
    score = torch.where(plausible, expert - amateur.clamp_min(torch.finfo(dtype).min / 4), -math.inf)
    redistributed = torch.log_softmax(score, dim=-1)
    if not keep_tail:
        return redistributed if out is None else out.copy_(redistributed)
    # log sum_{V_head} p_EXP. Probabilities cannot overflow and their sum is at least
    # max p_EXP >= 1/vocab, so summing them needs no max shift (nor exp(-inf) over the tail).
    plausible_mass = expert.exp().mul_(plausible).sum(dim=-1, keepdim=True).log_()
    return torch.where(plausible, redistributed.add_(plausible_mass), expert, out=out)
