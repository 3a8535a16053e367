"""Command line, the offline demo, the tiny model, exit inspection and the speed benchmark (perf)."""
