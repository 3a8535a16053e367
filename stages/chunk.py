"""DVC stage `chunk`: the corpus (params `corpus`, tokenizer of `model`) -> data/blocks (token blocks + manifest)."""

import sys

from acd.chunking import run_from_params
from acd.stage import run_stage

if __name__ == "__main__":
    run_stage(lambda: run_from_params(sys.argv[1] if len(sys.argv) > 1 else "params.yaml"))
