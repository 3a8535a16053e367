"""Evaluation: lm-eval model and tasks, generation metrics (diversity, coherence), head comparison, human-eval export."""
