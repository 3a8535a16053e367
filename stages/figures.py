"""DVC stage `figures`: the paper's figures as PNG (metrics/figures/), readable offline, unlike `dvc plots show`."""

from acd.pipeline.stage import run_stage
from acd.reports.figures import draw_all


def main() -> None:
    for path in draw_all("metrics"):
        print(f"wrote {path}")


if __name__ == "__main__":
    run_stage(main)
