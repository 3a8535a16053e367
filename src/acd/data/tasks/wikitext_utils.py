"""lm-eval's own WikiText detokenizer and word-perplexity scoring, for the local wikitext task."""

from lm_eval.tasks.wikitext.preprocess_wikitext import process_results, wikitext_detokenizer

__all__ = ["process_results", "wikitext_detokenizer"]
