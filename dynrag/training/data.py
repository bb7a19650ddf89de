"""Training questions, expert selections and the prompts the policy is trained on.

Prompts are rendered exactly as `DynamicReranker` renders them at inference (same prompt
format, same per-passage token limit, same chat template), so training and inference never
disagree on the format.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

from dynrag.core.backends.base import HFTokenizerText
from dynrag.core.backends.transformers import render_chat
from dynrag.core.presort import presort_ranking, with_presort_scores
from dynrag.core.prompts import Message, PromptFormat, get_prompt_format
from dynrag.core.types import Passage
from dynrag.eval.readers import EvalExample, drop_questions_in, read_examples
from dynrag.training.config import BCConfig, TrainConfig

__all__ = [
    "PromptBuilder",
    "expert_selection",
    "load_train_examples",
    "make_teacher",
    "with_missing_gold",
]

logger = logging.getLogger(__name__)

Teacher = Callable[[EvalExample], list[float]]
"""Scores each candidate of an example (higher: more useful)."""


def load_train_examples(config: TrainConfig, limit: int | None = None) -> list[EvalExample]:
    """The training questions of ``config.data``, with excluded questions removed.

    With ``config.presort`` the candidates are first put in that order (gold positions follow).
    Each example keeps its first ``config.max_candidates`` candidates (gold positions beyond
    them are dropped). A question that also appears in an ``exclude`` file is dropped and
    counted in the log, so an evaluation split cannot leak into training; ``data.limit`` (or the
    file's entry in ``data.file_limits``) then keeps the first that many questions of each file.
    Ids are unique across the files: one that an earlier file used gets ``#<file>`` appended.

    Raises:
        ValueError: no training files, or no example left.
    """
    if not config.data.train:
        msg = "data.train names no file; list the training data files in the config"
        raise ValueError(msg)
    out: list[EvalExample] = []
    dropped = clashes = 0
    ids: set[str] = set()
    for path in config.data.train:
        if limit is not None and len(out) >= limit:
            break
        examples = read_examples(path, config.data.format)
        examples, gone = drop_questions_in(examples, config.data.exclude)
        dropped += gone
        examples = examples[: config.data.limit_for(path)]
        empty = [ex for ex in examples if not ex.passages]
        if empty:  # nothing to select from: nothing to learn
            logger.info("skipped %d questions without candidates in %s", len(empty), path)
        kept = [ex for ex in examples if ex.passages]
        if limit is not None:  # presort (MiniLM on CPU) only the questions that are used
            kept = kept[: max(limit - len(out), 0)]
        for ex in kept:
            if ex.id in ids:  # another file used it (the reward cache and resumes key on it)
                ex.id = f"{ex.id}#{path}"
                clashes += 1
            ids.add(ex.id)
        out.extend(_presorted(ex, config.presort, config.max_candidates) for ex in kept)
    if dropped:
        logger.info("dropped %d training questions that appear in the exclude files", dropped)
    if clashes:
        logger.info("%d questions reuse an id of an earlier file; named '<id>#<file>'", clashes)
    if not out:
        msg = "no training examples left after exclusions"
        raise ValueError(msg)
    return out


def _presorted(example: EvalExample, presort: str | None, n: int) -> EvalExample:
    """``example`` with its candidates in presort order, cut to ``n`` (gold remapped).

    With a presort, each passage carries its score (`dynrag.core.presort.PRESORT_SCORE_KEY`),
    scored over all the candidates before the cut, as `DynamicReranker` scores them.
    """
    order, scores = presort_ranking(presort, example.question, example.passages)
    order = order[:n]
    position = {old: new for new, old in enumerate(order)}
    gold = None
    if example.gold is not None:
        gold = [position[g] for g in example.gold if g in position]
    passages = [example.passages[i] for i in order]
    if scores is not None:
        passages = with_presort_scores(passages, scores[:n])
    return example.model_copy(update={"passages": passages, "gold": gold})


def with_missing_gold(
    examples: Sequence[EvalExample], share: float, seed: int
) -> list[EvalExample]:
    """Copies of some examples with one gold passage taken out of the candidates.

    ``share`` of the examples with two or more gold passages (chosen with ``seed``) get a copy
    (id suffixed ``#missing-gold``) without one of their gold passages, also chosen at random;
    its gold list is the rest. Paired with the original, the same question then has targets of
    different k, which only the candidates explain.
    """
    rng = random.Random(seed)
    eligible = [(ex, ex.gold) for ex in examples if ex.gold is not None and len(ex.gold) >= 2]
    out: list[EvalExample] = []
    for ex, gold in rng.sample(eligible, round(share * len(eligible))):
        gone = rng.choice(gold)
        keep = [i for i in range(len(ex.passages)) if i != gone]
        position = {old: new for new, old in enumerate(keep)}
        update = {
            "id": f"{ex.id}#missing-gold",
            "passages": [ex.passages[i] for i in keep],
            "gold": [position[g] for g in gold if g != gone],
        }
        out.append(ex.model_copy(update=update))
    return out


def make_teacher(name: str, config: TrainConfig) -> Teacher | None:
    """A teacher scorer by name.

    ``minilm`` (cosine), ``bm25``, ``retrieval`` (None: input order) or ``reranker:<model>``
    (a dynrag reranker: its picks score by rank, the rest 0).

    Raises:
        ValueError: an unknown teacher.
    """
    if name == "retrieval":
        return None
    if name == "minilm":
        from dynrag.eval.selectors import minilm_scorer

        scored = minilm_scorer()
        return lambda ex: scored(ex)[0]
    if name == "bm25":
        from dynrag.eval.selectors import bm25_scorer

        scored = bm25_scorer()
        return lambda ex: scored(ex)[0]
    if name.startswith("reranker:"):
        from dynrag.core.reranker import DynamicReranker

        reranker = DynamicReranker.from_pretrained(name.split(":", 1)[1], device=config.device)

        def score(ex: EvalExample) -> list[float]:
            sel = reranker.rerank(ex.question, ex.passages)
            scores = [0.0] * len(ex.passages)
            for rank, i in enumerate(sel.indices):
                scores[i] = 1.0 / (rank + 1)
            return scores

        return score
    msg = f"unknown teacher {name!r}; use minilm, bm25, retrieval or reranker:<model>"
    raise ValueError(msg)


def expert_selection(example: EvalExample, cfg: BCConfig, teacher: Teacher | None) -> list[int]:
    """The selection behaviour cloning imitates: 0-based positions, best first.

    ``gold`` expert: the labelled passages ordered by teacher score (an empty gold list means
    no passage is needed: the target is the none text). Unlabelled examples, and the
    ``teacher`` expert, take the teacher's passages scoring at least ``teacher_cutoff``, at most
    ``teacher_max_k``. Targets are never padded with passages known to be irrelevant.

    Raises:
        ValueError: the teacher expert without a teacher, or an unlabelled example without one.
    """
    scores = teacher(example) if teacher is not None else None
    if cfg.expert == "gold" and example.gold is not None:
        if scores is None:
            return sorted(example.gold)
        return sorted(example.gold, key=lambda i: (-scores[i], i))
    if scores is None:
        msg = (
            f"example {example.id} has no gold passages and teacher 'retrieval' gives no scores; "
            "use teacher minilm, bm25 or reranker:<model>"
        )
        raise ValueError(msg)
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [i for i in order if scores[i] >= cfg.teacher_cutoff][: cfg.teacher_max_k]


class PromptBuilder(HFTokenizerText):
    """Renders a question and its candidates into the policy's prompt string.

    Passages are cut with the backends' own `truncate`, so training sees what inference sees.
    """

    def __init__(self, tokenizer: Any, prompt_format: str | PromptFormat, max_passage_tokens: int):
        """Use ``tokenizer``'s chat template, the named prompt format and the passage limit."""
        self.tokenizer = tokenizer
        self.fmt = get_prompt_format(prompt_format)
        self.max_passage_tokens = max_passage_tokens

    def messages(self, question: str, passages: Sequence[Passage]) -> list[Message]:
        """The chat messages, passages cut as `DynamicReranker` cuts them."""
        shown = [
            p.model_copy(update={"text": self.truncate(p.text, self.max_passage_tokens)[0]})
            for p in passages
        ]
        return self.fmt.messages(question, shown)

    def prompt(self, question: str, passages: Sequence[Passage]) -> str:
        """The rendered prompt the completion follows."""
        return render_chat(self.tokenizer, self.messages(question, passages))

    def completion(self, indices: Sequence[int]) -> str:
        """The target text for a selection, ended by the end-of-turn token."""
        return self.fmt.format_selection(indices) + self.tokenizer.eos_token


def fit_length(
    rows: list[dict[str, Any]],
    builder: PromptBuilder,
    max_length: int | None,
    fields: Sequence[str],
) -> tuple[list[dict[str, Any]], int]:
    """Rows whose prompt + completion fit ``max_length`` tokens, and the trainer's max length.

    The length returned is the longest kept row's. Longer rows are dropped with a warning: a
    completion is never truncated.
    """
    kept: list[dict[str, Any]] = []
    longest = 0
    for row in rows:
        prompt = builder.count_tokens(row["prompt"])
        total = max(prompt + builder.count_tokens(row[f]) for f in fields)
        if max_length is not None and total > max_length:
            continue
        longest = max(longest, total)
        kept.append(row)
    if len(kept) < len(rows):
        logger.warning(
            "dropped %d of %d examples longer than max_length=%s tokens (raise max_length or "
            "lower max_passage_tokens to keep them)",
            len(rows) - len(kept),
            len(rows),
            max_length,
        )
    return kept, longest + 1
