"""Released multi-exit checkpoints (the authors' layout) load as our exit heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import acd
from acd.core.multiexit import import_multiexit_heads


def test_released_heads_import_and_drive_acd(multiexit_checkpoint: Path) -> None:
    heads = import_multiexit_heads(multiexit_checkpoint)
    assert heads.exit_layers == [2, 4]
    tensors = load_file(str(multiexit_checkpoint / "model.safetensors"))
    torch.testing.assert_close(heads[2].weight, tensors["name_to_lm_exit_head.lm_head_2.weight"])
    model, _ = acd.load(multiexit_checkpoint, heads=multiexit_checkpoint, layer=2, device="cpu")
    assert str(model.acd_contrast.expert) == "head4" and str(model.acd_contrast.amateur) == "head2"
    torch.testing.assert_close(model.acd_heads[4].weight, tensors["name_to_lm_exit_head.lm_head_4.weight"])


def test_not_a_multiexit_checkpoint_is_a_clear_error(tiny_gpt2: Path) -> None:
    with pytest.raises(acd.UsageError, match=r"not a multi-exit checkpoint: config.json has no lm_head_layer_indices"):
        import_multiexit_heads(tiny_gpt2)
