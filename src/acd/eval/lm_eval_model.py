"""The lm-evaluation-harness model ``acd``: lm-eval scores the ACD model, or every exit from one body pass.

Without ``exits`` it is lm-eval's ``HFLM`` over the model :func:`acd.load` returns, so lm-eval
scores p_ACD (or the plain expert when no ``layer`` is given) exactly as it scores any causal LM.

With ``exits`` (e.g. ``exits=all``, see :mod:`acd.core.exits`) each batch runs the transformer body
once and every named exit is scored from the same hidden states, only at the continuation
positions. lm-eval evaluates one model per run, so the model answers lm-eval with the first
exit and keeps every exit's answers; :meth:`ACDLM.replay` then serves another exit's answers to
a further lm-eval run over the same tasks without any model pass (the requests are identical).

Under several processes (``torchrun`` / ``accelerate launch``) lm-eval sees one process on each, and
the model splits its work: process r scores the batches whose index is r modulo their number (the
batches one process would form, so every number is the one a single process computes) and every
process receives all answers, so lm-eval's metrics are identical on each and the main one writes them.

Importing this module registers ``acd``; ``python -m acd.eval.lm_eval_model --model acd
--model_args pretrained=gpt2-medium,layer=12 --tasks lambada_openai`` is lm-eval's own CLI with it.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import Collator
from tqdm import tqdm

from acd.errors import UsageError
from acd.core.exits import parse_exits, score_exits
from acd.core.loading import describe, load
from acd.core.model import Contrast
from acd.core.spec import ContrastSpec
from acd.pipeline.world import init_world

Answer = tuple[float, bool]
logger = logging.getLogger(__name__)
# What a process answers for a batch of rolling windows that another process scores (summed, then discarded).
NOT_MINE = (0.0, False)


def sort_key(request: Any) -> tuple[int, tuple[int, ...]]:
    """HFLM's order: longest context + continuation first (little padding; memory trouble shows at once)."""
    tokens = request[1] + request[2]
    return -len(tokens), tuple(tokens)


def group_key(request: Any) -> tuple[int, ...]:
    """HFLM's logits cache: requests sharing context + continuation[:-1] are scored by one forward pass."""
    return tuple(request[-2] + request[-1][:-1])


def token_batches(requests: Sequence[Any], batch_size: int, grouped: bool) -> list[list[int]]:
    """The batches of ``_loglikelihood_tokens`` as request indices, each with the members of its cached groups.

    lm-eval's own :class:`Collator` forms them (sorted, grouped when ``grouped``, ``batch_size`` a batch),
    so handing one process the requests of some batches makes its Collator form exactly those batches:
    every batch is full but the last one overall, which stays last.
    """
    entries = [(index, request[1], request[2]) for index, request in enumerate(requests)]
    collator = Collator(entries, sort_fn=sort_key, group_fn=group_key, group_by="contexts" if grouped else None)
    if not grouped:
        return [sorted(entry[0] for entry in batch) for batch in collator.get_batched(n=batch_size)]
    members: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, request in enumerate(requests):
        members[group_key(request)].append(index)
    return [sorted(itertools.chain.from_iterable(members[group_key(entry)] for entry in batch))
            for batch in collator.get_batched(n=batch_size)]


@register_model("acd")
class ACDLM(HFLM):
    """HFLM over ``acd.load(pretrained, heads=..., layer=..., alpha=..., ...)``; ``exits`` scores many exits per pass."""

    def __init__(
        self,
        pretrained: str,
        heads: str | None = None,
        exits: str | Sequence[str] | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | str = 1,
        max_batch_size: int | None = 64,
        max_length: int | None = None,
        softmax_dtype: str | None = None,
        **contrast: Any,
    ) -> None:
        """``contrast``: the fields of :class:`~acd.core.spec.ContrastSpec` (``layer``, ``alpha``, ...)."""
        spec = ContrastSpec.from_kwargs(**contrast)  # before the device: a typo fails first
        self.world = init_world(device)  # several processes under torchrun / accelerate launch: work split by batch
        if self.world.size > 1:
            if not isinstance(batch_size, int):
                raise UsageError(f"batch_size={batch_size!r} is not allowed with several processes: give a number "
                                 "of sequences (each process scores whole batches of that size)")
            device = self.world.device
        if device is not None and device.startswith("cuda") and not torch.cuda.is_available():
            # lm-eval's CLI asks for cuda:0 by default; HFLM falls back to the CPU then, and so do we.
            logger.warning("device=%r is not available: using the CPU", device)
            device = "cpu"
        if exits is not None and not isinstance(batch_size, int):
            raise UsageError(f"batch_size={batch_size!r} is not allowed with exits: give a number of sequences")
        model, tokenizer = load(str(pretrained), heads=heads, spec=spec, device=device, dtype=dtype)
        super().__init__(
            pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_batch_size=max_batch_size,
            max_length=max_length, softmax_dtype=softmax_dtype,
        )
        self.pretrained_name = str(pretrained)
        self.scorers: dict[str, Contrast] | None = None if exits is None else parse_exits(exits, model)
        self.answers: dict[str, dict[tuple[str, tuple[str, ...]], Any]] = {name: {} for name in self.scorers or {}}
        self._rolling: Callable[[list[Any], Callable[[], list[Any]]], list[Any]] | None = None

    @property
    def exit_names(self) -> list[str]:
        """What one lm-eval run over this model yields: every exit, or the model's own contrast."""
        if self.scorers is not None:
            return list(self.scorers)
        contrast = self.model.acd_contrast
        return ["acd" if contrast.amateur is not None else str(contrast.expert)]

    def get_model_info(self) -> dict[str, Any]:
        """What lm-eval records about the model; no hub lookups (HFLM's asks the hub for a sha)."""
        return {
            "model_name": self.pretrained_name,
            "model_num_parameters": sum(p.numel() for p in self.model.parameters()),
            "model_dtype": str(self.model.dtype),
            "acd": describe(self.model),
            "exits": self.exit_names,
        }

    # ---- one body pass, every exit ----------------------------------------------------------

    def _loglikelihood_tokens(
        self, requests: list[Any], disable_tqdm: bool = False, override_bs: int | None = None
    ) -> list[Any]:
        """HFLM's answers, or with exits per request (log-likelihood per exit, greedy match per exit) as arrays."""
        disable_tqdm = disable_tqdm or not self.world.main
        if self.world.size == 1:
            return self._score_tokens(requests, disable_tqdm, override_bs)
        if self._rolling is not None:  # one batch of rolling windows: see loglikelihood_rolling
            return self._rolling(requests, lambda: self._score_tokens(requests, disable_tqdm, override_bs))
        grouped = self.scorers is None and self.backend == "causal" and self.logits_cache
        batches = token_batches(requests, self.batch_size, grouped)
        mine = sorted(itertools.chain.from_iterable(batches[self.world.rank::self.world.size]))
        mine_answers = self._score_tokens([requests[index] for index in mine], disable_tqdm, override_bs)
        answers: list[Any] = [None] * len(requests)
        for indices, part in self.world.gather((mine, mine_answers)):
            for index, answer in zip(indices, part, strict=True):
                answers[index] = answer
        return answers

    def _score_tokens(self, requests: list[Any], disable_tqdm: bool, override_bs: int | None) -> list[Any]:
        if self.scorers is None:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        collator = Collator(requests, sort_fn=sort_key)
        answers: list[tuple[np.ndarray, np.ndarray]] = []
        with tqdm(total=len(requests), disable=disable_tqdm, desc=f"Scoring {len(self.scorers)} exits") as bar:
            for chunk in collator.get_batched(n=self.batch_size):
                answers.extend(self._score_exits(chunk))
                bar.update(len(chunk))
        return collator.get_original(answers)

    def _score_exits(self, chunk: list[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
        # Same window as HFLM: context + continuation, left-truncated, without the last token.
        inputs = [(context + continuation)[-(self.max_length + 1):][:-1] for _, context, continuation in chunk]
        continuations = [continuation for _, _, continuation in chunk]
        totals, greedy = score_exits(self.model, self.scorers, inputs, continuations, self.device)
        totals_np, greedy_np = totals.double().cpu().numpy(), greedy.cpu().numpy()
        return [(totals_np[row], greedy_np[row]) for row in range(len(chunk))]

    # ---- lm-eval's request types: keep every exit's answers, answer with the first --------

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
        answers = super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        return self._keep("loglikelihood", requests, answers, lambda answer, i: (float(answer[0][i]), bool(answer[1][i])))

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
        # HFLM sums the windows' answers per document; with exits those are arrays, summed per exit.
        if self.world.size == 1:
            answers = super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)
        else:
            answers = self._rolling_in_parallel(requests)
        return self._keep("loglikelihood_rolling", requests, answers, lambda answer, i: float(answer[i]))

    def _rolling_in_parallel(self, requests: list[Any]) -> list[Any]:
        """HFLM's rolling loop scores one batch of windows per ``_loglikelihood_tokens`` call: a first pass
        scores the calls whose number is this rank modulo the processes, a second replays every call's
        gathered answers so that HFLM sums them per document exactly as with one process."""
        mine: dict[int, list[Any]] = {}
        calls = itertools.count()

        def score_mine(batch: list[Any], score: Callable[[], list[Any]]) -> list[Any]:
            call = next(calls)
            if call % self.world.size == self.world.rank:
                mine[call] = score()
            return [NOT_MINE] * len(batch)

        self._rolling = score_mine
        try:
            super().loglikelihood_rolling(requests, disable_tqdm=True)
            scored = {call: answers for part in self.world.gather(mine) for call, answers in part.items()}
            replay = itertools.count()
            self._rolling = lambda batch, score: scored[next(replay)]
            return super().loglikelihood_rolling(requests, disable_tqdm=True)
        finally:
            self._rolling = None

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        if self.scorers is not None:
            raise UsageError("exits=... scores log-likelihood tasks only: run generation tasks without exits")
        return super().generate_until(requests, disable_tqdm=disable_tqdm)

    def _keep(self, kind: str, requests: list[Any], answers: list[Any], pick: Callable[[Any, int], Any]) -> list[Any]:
        if self.scorers is None:
            return answers
        for index, name in enumerate(self.scorers):
            kept = self.answers[name]
            for request, answer in zip(requests, answers, strict=True):
                kept[(kind, request.args)] = pick(answer, index)
        return self.replay(self.exit_names[0]).answer_all(kind, requests)

    def replay(self, name: str) -> ReplayLM:
        """An lm-eval model that answers the requests already scored, as exit ``name`` did."""
        if name not in self.answers:
            raise UsageError(f"exit={name!r} was not scored: scored exits are {', '.join(self.answers) or 'none'}")
        return ReplayLM(self.answers[name], name)


class ReplayLM(LM):
    """Answers lm-eval with one exit's kept answers: a second run over the same tasks costs no model pass."""

    def __init__(self, answers: dict[tuple[str, tuple[str, ...]], Any], name: str) -> None:
        super().__init__()
        self._answers, self.name = answers, name

    def answer_all(self, kind: str, requests: list[Any]) -> list[Any]:
        try:
            return [self._answers[(kind, request.args)] for request in requests]
        except KeyError:
            raise RuntimeError(
                f"exit {self.name}: a {kind} request was not scored in the exits run; replay the same tasks and settings"
            ) from None

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Answer]:
        return self.answer_all("loglikelihood", requests)

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        return self.answer_all("loglikelihood_rolling", requests)

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        raise UsageError("exits=... scores log-likelihood tasks only: run generation tasks without exits")


MODEL_ARGS = tuple(
    name for name in inspect.signature(ACDLM.__init__).parameters if name not in ("self", "contrast")
) + ContrastSpec.knobs()


def parse_model_args(text: str) -> dict[str, Any]:
    """lm-eval's ``key=value,...`` model_args, with unknown keys refused (close matches named)."""
    from lm_eval.utils import simple_parse_args_string

    parts = [part for part in text.split(",") if part.strip()]
    if any("=" not in part for part in parts):
        raise UsageError(f"model_args={text!r} is not allowed: give key=value pairs separated by commas")
    args = simple_parse_args_string(text)
    for key in args:
        if key not in MODEL_ARGS:
            close = difflib.get_close_matches(key, MODEL_ARGS, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise UsageError(f"model_args key {key!r} is not known: {hint}known are {', '.join(MODEL_ARGS)}")
    if "pretrained" not in args:
        raise UsageError("model_args has no pretrained=...: name a hub id or local directory of a causal LM")
    return args


if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()
