"""``acd bench`` (the speed benchmark, module acd.tools.perf) as a script, for a checkout without the package installed.

    python scripts/perf.py --quick
    python scripts/perf.py --device cuda --out metrics/bench.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from acd.tools.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])
