"""Reports: Markdown tables beside the paper's numbers, the benchmark report, the experiment grid."""
