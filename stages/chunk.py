"""DVC stage `chunk`: the corpus (params `corpus`, tokenizer of `model`) -> data/blocks (token blocks + manifest).

With imported heads (`heads.source` not `train`) it reads no corpus: data/blocks holds only a manifest saying so.
"""

import sys

from acd.pipeline.chunking import run_from_params
from acd.pipeline.stage import run_stage

if __name__ == "__main__":
    run_stage(lambda: run_from_params(sys.argv[1] if len(sys.argv) > 1 else "params.yaml"))
