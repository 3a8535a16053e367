"""What every DVC stage entry point shares: user mistakes become one line and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from acd.errors import UsageError


def run_stage(main: Callable[[], object]) -> None:
    try:
        main()
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
