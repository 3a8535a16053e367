"""The DoLa-style dynamic amateur: JSD properties and per-position selection."""

from __future__ import annotations

import math

import torch

from acd.core.dynamic import jensen_shannon, select_amateur


def test_jensen_shannon_bounds_and_symmetry() -> None:
    p = torch.log_softmax(torch.randn(5, 30, generator=torch.Generator().manual_seed(0)), -1)
    q = torch.log_softmax(torch.randn(5, 30, generator=torch.Generator().manual_seed(1)), -1)
    jsd = jensen_shannon(p, q)
    torch.testing.assert_close(jsd, jensen_shannon(q, p))
    assert (jsd > 0).all() and (jsd <= math.log(2) + 1e-6).all()
    torch.testing.assert_close(jensen_shannon(p, p), torch.zeros(5))
    disjoint = jensen_shannon(torch.tensor([0.0, -math.inf]), torch.tensor([-math.inf, 0.0]))
    assert abs(disjoint.item() - math.log(2)) < 1e-6


def test_select_amateur_picks_the_most_divergent_candidate_per_position() -> None:
    expert = torch.tensor([[[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]]])  # [B=1, T=2, V=3]
    close = expert.clone()
    far_first = torch.tensor([[[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]])
    far_second = torch.tensor([[[5.0, 0.0, 0.0], [5.0, 0.0, 0.0]]])
    chosen, index = select_amateur(expert, [close, far_first, far_second])
    assert index.tolist() == [[1, 2]]
    torch.testing.assert_close(chosen[0, 0], far_first[0, 0].log_softmax(-1))
    torch.testing.assert_close(chosen[0, 1], far_second[0, 1].log_softmax(-1))
