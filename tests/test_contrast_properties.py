"""Property-based checks of acd_log_probs over random and extreme logits in every dtype."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from acd.core.contrast import acd_log_probs, plausible_mask

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False, width=32)
amateur_value = st.one_of(finite, st.just(-math.inf))


@st.composite
def contrast_case(draw: st.DrawFn):
    vocab = draw(st.integers(min_value=2, max_value=40))
    expert = draw(arrays(np.float64, vocab, elements=finite))
    amateur = draw(arrays(np.float64, vocab, elements=amateur_value))
    if np.isneginf(amateur).all():
        amateur[0] = 0.0  # a distribution needs one possible token
    dtype = draw(st.sampled_from(DTYPES))
    alpha = draw(st.one_of(st.sampled_from([0.0, 0.1, 1.0]), st.floats(min_value=0.0, max_value=1.0)))
    k = draw(st.integers(min_value=1, max_value=3))
    return torch.tensor(expert).to(dtype), torch.tensor(amateur).to(dtype), alpha, k


@settings(max_examples=300, deadline=None)
@given(contrast_case())
def test_finite_normalised_tail_kept_greedy_plausible(case) -> None:
    expert, amateur, alpha, k = case
    log_p = acd_log_probs(expert, amateur, alpha=alpha, min_candidates=k)
    compute = torch.float64 if expert.dtype == torch.float64 else torch.float32
    assert log_p.dtype == compute
    assert torch.isfinite(log_p).all()
    tol = 1e-9 if compute == torch.float64 else 1e-4
    assert abs(log_p.exp().sum().item() - 1.0) < tol
    le = torch.log_softmax(expert.to(compute), -1)
    head = plausible_mask(le, alpha, k)
    assert head.sum() >= min(k, le.numel())
    assert torch.equal(log_p[~head], le[~head])
    assert head[log_p.argmax()]
    mass_in, mass_acd = le[head].exp().sum().item(), log_p[head].exp().sum().item()
    assert abs(mass_in - mass_acd) < tol * 10


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=2, max_value=20), st.sampled_from([0.5, 0.25, 0.125]), st.sampled_from(DTYPES[:2]))
def test_ties_at_the_threshold_are_inside(vocab: int, alpha: float, dtype: torch.dtype) -> None:
    # p(1) is exactly alpha * p(0) (powers of two are exact): the inclusive >= keeps it plausible.
    logits = torch.full((vocab,), -30.0, dtype=dtype)
    logits[0], logits[1] = 0.0, math.log(alpha)
    head = plausible_mask(torch.log_softmax(logits, -1), alpha)
    assert head[0] and head[1] and head.sum() == 2


@settings(max_examples=100, deadline=None)
@given(contrast_case())
def test_keep_tail_false_is_a_distribution_on_the_plausible_set(case) -> None:
    expert, amateur, alpha, k = case
    log_p = acd_log_probs(expert, amateur, alpha=alpha, min_candidates=k, keep_tail=False)
    compute = torch.float64 if expert.dtype == torch.float64 else torch.float32
    head = plausible_mask(torch.log_softmax(expert.to(compute), -1), alpha, k)
    assert torch.isneginf(log_p[~head]).all() and torch.isfinite(log_p[head]).all()
    assert abs(log_p.exp().sum().item() - 1.0) < 1e-4
