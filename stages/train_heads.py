"""DVC stage `train_heads`: data/blocks + frozen `model` -> models/heads, metrics/train_heads.json, train_loss.csv.

Several GPUs: `torchrun --nproc_per_node N stages/train_heads.py` (or `accelerate launch`), same outputs.
With `heads.source` naming a released multi-exit checkpoint it imports those heads instead of training.
"""

import sys

from acd.pipeline.stage import run_stage
from acd.pipeline.training import run_from_params

if __name__ == "__main__":
    run_stage(lambda: run_from_params(sys.argv[1] if len(sys.argv) > 1 else "params.yaml"))
