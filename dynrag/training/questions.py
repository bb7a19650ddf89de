"""The training questions of a config's ``data:`` section, as the stages of both families read them.

Candidates are put in presort order (when ``presort`` is set, as the reranker orders them at
inference) and cut to ``max_candidates``; questions of the ``exclude`` files are dropped, so an
evaluation split cannot leak into training.
"""

from __future__ import annotations

import logging

from dynrag.core.presort import presort_ranking, with_presort_scores
from dynrag.data.examples import QAExample
from dynrag.data.readers import drop_questions_in, read_examples
from dynrag.training.config import SharedConfig

__all__ = ["load_train_examples"]

logger = logging.getLogger(__name__)


def load_train_examples(config: SharedConfig, limit: int | None = None) -> list[QAExample]:
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
    out: list[QAExample] = []
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


def _presorted(example: QAExample, presort: str | None, n: int) -> QAExample:
    """``example`` with its candidates in presort order, cut to ``n`` (gold remapped).

    With a presort, each passage carries its score (`dynrag.core.presort.PRESORT_SCORE_KEY`),
    scored over all the candidates before the cut, as `GenerativeReranker` scores them.
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
