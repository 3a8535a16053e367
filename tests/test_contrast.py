"""The ACD distribution against the paper's Eqs. 1-5 and an independent NumPy re-implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from acd.core.contrast import acd_log_probs, plausible_mask


def reference_acd(expert_logits: np.ndarray, amateur_logits: np.ndarray, alpha: float) -> np.ndarray:
    """Straightforward probability-space version of Eqs. 1-5, one distribution at a time, float64."""
    p_exp = np.exp(expert_logits - expert_logits.max())
    p_exp /= p_exp.sum()
    p_ama = np.exp(amateur_logits - amateur_logits.max())
    p_ama /= p_ama.sum()
    head = p_exp >= alpha * p_exp.max()
    score = np.log(p_exp[head]) - np.log(p_ama[head])
    soft = np.exp(score - score.max())
    soft /= soft.sum()
    out = p_exp.copy()
    out[head] = soft * p_exp[head].sum()
    return out


def random_logits(*shape: int, scale: float = 3.0, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.1, 0.5, 1.0])
def test_matches_reference(alpha: float) -> None:
    expert, amateur = random_logits(6, 50, seed=1), random_logits(6, 50, seed=2)
    ours = acd_log_probs(expert, amateur, alpha=alpha).exp().numpy()
    for row in range(6):
        np.testing.assert_allclose(ours[row], reference_acd(expert[row].numpy(), amateur[row].numpy(), alpha), atol=1e-12)


def test_normalised_tail_kept_and_greedy_inside_plausible_set() -> None:
    expert, amateur = random_logits(4, 7, 100, seed=3), random_logits(4, 7, 100, seed=4)
    log_p = acd_log_probs(expert, amateur, alpha=0.1)
    assert log_p.shape == (4, 7, 100)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(4, 7, dtype=torch.float64))
    p_exp = expert.softmax(-1)
    head = p_exp >= 0.1 * p_exp.amax(-1, keepdim=True)
    torch.testing.assert_close(log_p.exp()[~head], p_exp[~head])
    torch.testing.assert_close(log_p.exp().masked_fill(~head, 0).sum(-1), p_exp.masked_fill(~head, 0).sum(-1))
    assert head.gather(-1, log_p.argmax(-1, keepdim=True)).all()


def test_greedy_picks_largest_contrast_not_largest_expert() -> None:
    expert = torch.log(torch.tensor([0.5, 0.4, 0.1]))
    amateur = torch.log(torch.tensor([0.8, 0.1, 0.1]))  # the amateur likes token 0 too much
    assert acd_log_probs(expert, amateur, alpha=0.5).argmax().item() == 1


def test_alpha_one_keeps_expert_and_alpha_zero_contrasts_everything() -> None:
    expert, amateur = random_logits(50, seed=5), random_logits(50, seed=6)
    torch.testing.assert_close(acd_log_probs(expert, amateur, alpha=1.0), expert.log_softmax(-1))
    torch.testing.assert_close(
        acd_log_probs(expert, amateur, alpha=0.0), (expert.log_softmax(-1) - amateur.log_softmax(-1)).log_softmax(-1)
    )


def test_ties_at_threshold_are_plausible() -> None:
    expert = torch.log(torch.tensor([0.4, 0.4, 0.2], dtype=torch.float64))
    assert plausible_mask(expert.log_softmax(-1), alpha=1.0).tolist() == [True, True, False]


def test_min_candidates_widens_the_plausible_set() -> None:
    expert = torch.tensor([10.0, 0.0, -1.0, -2.0])
    assert plausible_mask(expert.log_softmax(-1), 0.1, 1).sum() == 1
    assert plausible_mask(expert.log_softmax(-1), 0.1, 3).tolist() == [True, True, True, False]
    amateur = torch.tensor([10.0, -5.0, 0.0, 0.0])
    assert acd_log_probs(expert, amateur, 0.1, min_candidates=1).argmax() == 0
    assert acd_log_probs(expert, amateur, 0.1, min_candidates=3).argmax() == 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_dtypes_and_underflow_stay_finite(dtype: torch.dtype) -> None:
    expert = torch.tensor([[2.0, 1.9, 1.8, -3.0], [0.0, 0.0, -60.0, -60.0]], dtype=dtype)
    # p_AMA underflows to 0 in float32 for the first tokens: log(softmax) would be -inf, S = inf, NaN.
    amateur = torch.tensor([[-1e4, 0.0, 1e4, 0.0], [-1e4, -1e4, 1e4, 0.0]], dtype=dtype)
    log_p = acd_log_probs(expert, amateur, alpha=0.1)
    assert log_p.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert torch.isfinite(log_p).all()
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(2, dtype=log_p.dtype))


def test_minus_inf_amateur_entry_wins_instead_of_nan() -> None:
    expert = torch.tensor([1.0, 1.0, -5.0])
    amateur = torch.tensor([0.0, -math.inf, 0.0])
    log_p = acd_log_probs(expert, amateur, alpha=0.1)
    assert torch.isfinite(log_p).all() and log_p.argmax() == 1


@pytest.mark.parametrize(
    ("expert_shape", "amateur_shape", "out_shape"),
    [((50,), (50,), (50,)), ((3, 50), (3, 50), (3, 50)), ((2, 5, 50), (1, 1, 50), (2, 5, 50)), ((2, 5, 50), (50,), (2, 5, 50))],
)
def test_shapes_broadcast(expert_shape: tuple[int, ...], amateur_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
    expert, amateur = random_logits(*expert_shape, seed=7), random_logits(*amateur_shape, seed=8)
    log_p = acd_log_probs(expert, amateur)
    assert log_p.shape == out_shape
    full = amateur.expand(out_shape)
    torch.testing.assert_close(log_p, acd_log_probs(expert.expand(out_shape), full))


def test_keep_tail_false_is_li_et_al_contrastive_decoding() -> None:
    expert, amateur = random_logits(50, seed=9), random_logits(50, seed=10)
    log_p = acd_log_probs(expert, amateur, alpha=0.1, keep_tail=False)
    head = plausible_mask(expert.log_softmax(-1), 0.1)
    assert torch.isneginf(log_p[~head]).all()
    torch.testing.assert_close(log_p.exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    score = expert.log_softmax(-1)[head] - amateur.log_softmax(-1)[head]
    torch.testing.assert_close(log_p[head], score.log_softmax(-1))


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "0.1", None, True])
def test_bad_alpha_is_a_clear_value_error(alpha: object) -> None:
    with pytest.raises(ValueError, match=r"alpha=.* must be a number in \[0, 1\]"):
        acd_log_probs(torch.zeros(3), torch.zeros(3), alpha=alpha)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [0, -1, 1.5])
def test_bad_min_candidates_is_a_clear_value_error(k: object) -> None:
    with pytest.raises(ValueError, match=r"min_candidates=.* integer >= 1"):
        acd_log_probs(torch.zeros(3), torch.zeros(3), min_candidates=k)  # type: ignore[arg-type]


@pytest.mark.parametrize("keep_tail", [True, False])
def test_out_receives_the_result_even_over_the_expert_logits(keep_tail: bool) -> None:
    expert, amateur = random_logits(3, 4, 50, seed=11), random_logits(3, 4, 50, seed=12)
    expected = acd_log_probs(expert, amateur, alpha=0.1, keep_tail=keep_tail)
    overwritten = expert.clone()
    result = acd_log_probs(overwritten[:, 1:3], amateur[:, 1:3], alpha=0.1, keep_tail=keep_tail, out=overwritten[:, 1:3])
    assert result.data_ptr() == overwritten[:, 1:3].data_ptr()
    torch.testing.assert_close(overwritten[:, 1:3], expected[:, 1:3])
    torch.testing.assert_close(overwritten[:, [0, 3]], expert[:, [0, 3]])
