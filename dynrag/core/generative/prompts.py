"""Prompt formats: what a reranker model reads and the grammar it writes.

A format is looked up by name in a small registry (`get_prompt_format`, `register_prompt_format`).
``dynamicrag-v1`` is exactly what the released DynamicRAG checkpoints were trained on: a fixed
system message, then ``Query: ...`` and the passages numbered ``1. Topic: ...`` (1-based, no
brackets), and an answer such as ``[3], [1], [7]`` or ``None``.

The generator's prompt (how the released checkpoints answer from a selection) lives here too, so
that evaluation and training read the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dynrag.core.constants import DEFAULT_PROMPT_FORMAT
from dynrag.core.presort import PRESORT_SCORE_KEY
from dynrag.core.types import Passage

__all__ = [
    "DYNAMICRAG_V1",
    "DYNRAG_SCORED_V1",
    "GENERATOR_V1",
    "GeneratorFormat",
    "Message",
    "PromptFormat",
    "available_prompt_formats",
    "get_prompt_format",
    "register_prompt_format",
    "render_chat",
]

Message = dict[str, str]
"""A chat message: ``{"role": ..., "content": ...}``."""


@dataclass(frozen=True)
class PromptFormat:
    """How a reranker is prompted and what it answers.

    The output grammar is ``none_text`` or ``id_open + id + id_close`` items joined by
    ``separator``, with 1-based ids; `dynrag.core.generative.parsing.parse_selection` reads it and
    `dynrag.core.generative.constrained.SelectionGrammar` enforces it during decoding.
    """

    name: str
    """Registry name, recorded in trained models' ``dynrag_config.json``."""
    system: str
    """The system message."""
    query_template: str
    """The user message's head; ``{query}`` is replaced."""
    passage_template: str
    """One passage; ``{i}`` (1-based), ``{title}`` and ``{text}`` are replaced, and ``{score}``
    (a float, e.g. ``{score:.1f}``) by the passage's first-stage score where the format shows
    one (`uses_scores`)."""
    passage_joiner: str = "\n"
    """What joins the rendered passages."""
    id_open: str = "["
    """Written before each id."""
    id_close: str = "]"
    """Written after each id."""
    separator: str = ", "
    """Written between two ids."""
    none_text: str = "None"
    """Written when no passage is needed."""
    window_size: int = 20
    """Default number of candidates shown at once (the released 7B saw 20, the 8B 40)."""

    @property
    def uses_scores(self) -> bool:
        """Whether passages are shown with their first-stage score (``{score}`` in the template).

        Such a format needs a presort (`dynrag.core.presort`): the score is read from each
        passage's ``metadata[PRESORT_SCORE_KEY]``, which the reranker and the training data set.
        """
        return "{score" in self.passage_template

    def output_tokens(self, num_ids: int, largest_id: int) -> int:
        """Enough new tokens to write ``num_ids`` ids up to ``largest_id`` (or the none text).

        Counted in characters, which no tokenizer exceeds, plus two for the end of turn: the one
        output-length budget of inference, sampling and RL.
        """
        per_id = len(self.id_open) + len(str(max(largest_id, 1))) + len(self.id_close)
        per_id += len(self.separator)
        return max(num_ids * per_id, len(self.none_text)) + 2

    def messages(self, query: str, passages: Sequence[Passage]) -> list[Message]:
        """The chat messages for one query and its (already truncated) candidates.

        Raises:
            ValueError: the format shows scores and a passage has none.
        """
        rendered = self.passage_joiner.join(
            self.passage_template.format(
                i=i, title=p.title or "", text=p.text, score=self._score(p, i)
            )
            for i, p in enumerate(passages, start=1)
        )
        user = self.query_template.format(query=query) + rendered
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def _score(self, passage: Passage, i: int) -> float | None:
        if not self.uses_scores:
            return None
        score = passage.metadata.get(PRESORT_SCORE_KEY)
        if not isinstance(score, (int, float)):
            msg = (
                f"prompt format {self.name!r} shows first-stage scores, but passage {i} has none "
                f"(metadata[{PRESORT_SCORE_KEY!r}]); use it with a presort"
            )
            raise ValueError(msg)
        return float(score)

    def format_selection(self, indices: Sequence[int]) -> str:
        """The completion a model should write for 0-based ``indices`` (training targets)."""
        if not indices:
            return self.none_text
        return self.separator.join(f"{self.id_open}{i + 1}{self.id_close}" for i in indices)


@dataclass(frozen=True)
class GeneratorFormat:
    """How a generator is asked to answer from selected passages."""

    name: str
    """Registry name."""
    system: str
    """The system message."""
    user_template: str
    """``{instruction}``, ``{question}`` and ``{context}`` are replaced."""
    passage_template: str
    """One passage; ``{id}`` (the passage's original 1-based id), ``{title}``, ``{text}``."""
    empty_context: str
    """What stands in ``{context}`` when nothing was selected."""
    instruction: str = "Please answer the question with a short phrase."
    """The task instruction (short-form QA by default)."""

    def messages(
        self, question: str, passages: Sequence[Passage], ids: Sequence[int] | None = None
    ) -> list[Message]:
        """Chat messages asking for an answer to ``question`` from ``passages`` (in that order).

        Args:
            question: The question.
            passages: The selected passages, in the reranker's order.
            ids: Their original 1-based ids; ``1..len(passages)`` when omitted.
        """
        if ids is None:
            ids = list(range(1, len(passages) + 1))
        if passages:
            context = "Retrieved Content:\n" + "\n".join(
                self.passage_template.format(id=i, title=p.title or "", text=p.text)
                for i, p in zip(ids, passages, strict=False)
            )
        else:
            context = self.empty_context
        user = self.user_template.format(
            instruction=self.instruction, question=question, context=context
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


_V1_SYSTEM = "\n".join(
    [
        "You are an expert at dynamically generating document identifiers to answer a given query.",
        "I will provide you with a set of documents, each uniquely identified by a number within "
        "square brackets, e.g., [1], [2], etc.",
        "Your task is to identify and generate only the identifiers of the documents that contain "
        "sufficient information to answer the query.",
        "Stop generating identifiers as soon as the selected documents collectively provide enough "
        "information to answer the query.",
        'If no documents are required to answer the query, output "None".',
        'Output the identifiers as a comma-separated list, e.g., [1], [2] or "None" if no '
        "documents are needed.",
        "Focus solely on providing the identifiers. Do not include any explanations, descriptions, "
        "or additional text.",
    ]
)

DYNAMICRAG_V1 = PromptFormat(
    name=DEFAULT_PROMPT_FORMAT,
    system=_V1_SYSTEM,
    query_template="Query: {query}\nRetrieved Content:\n",
    passage_template="{i}. Topic: {title}\nContent: {text}",
)
"""The released DynamicRAG checkpoints' reranker prompt (upstream.md, "dynamicrag-v1")."""

GENERATOR_V1 = GeneratorFormat(
    name="dynamicrag-v1-generator",
    system="\n".join(
        [
            "You are an assistant that answers questions from retrieved content.",
            "1. Answer from the retrieved content when it holds the information needed.",
            '2. When the retrieved content is "None", answer from your own knowledge.',
            "3. When the information is insufficient, say that you cannot fully answer.",
            "4. Be concise and follow the instruction about the form of the answer.",
        ]
    ),
    user_template="{instruction}\n\nQuery: {question}\n\n{context}",
    passage_template="{id}. Title: {title}.\nContent: {text}",
    empty_context="Retrieved Content: None",
)
"""The released checkpoints' generator prompt (upstream.md), short-form QA instruction."""

DYNRAG_SCORED_V1 = PromptFormat(
    name="dynrag-scored-v1",
    system="\n".join(
        [
            *_V1_SYSTEM.split("\n")[:2],
            "Each document also shows its retrieval score: how well a first-stage retriever "
            "(BM25 + embeddings) matched it to the query, higher meaning a better match.",
            *_V1_SYSTEM.split("\n")[2:],
        ]
    ),
    query_template="Query: {query}\nRetrieved Content:\n",
    passage_template="{i}. Topic: {title} (score {score:.1f})\nContent: {text}",
)
"""``dynamicrag-v1`` with each passage's first-stage (presort) score shown beside its title.

Trained models only (the released checkpoints never saw scores); needs a presort. The score
gives a small model something to set k by: how far the second or third candidate falls behind
the first."""

_REGISTRY: dict[str, PromptFormat] = {
    DYNAMICRAG_V1.name: DYNAMICRAG_V1,
    DYNRAG_SCORED_V1.name: DYNRAG_SCORED_V1,
}


def register_prompt_format(fmt: PromptFormat, *, overwrite: bool = False) -> None:
    """Add a prompt format to the registry under ``fmt.name``.

    Raises:
        ValueError: the name is taken and ``overwrite`` is false.
    """
    if fmt.name in _REGISTRY and not overwrite:
        msg = f"prompt format {fmt.name!r} is already registered"
        raise ValueError(msg)
    _REGISTRY[fmt.name] = fmt


def get_prompt_format(name: str | PromptFormat) -> PromptFormat:
    """Look a prompt format up by name (a `PromptFormat` is returned as is).

    Raises:
        ValueError: no format of that name.
    """
    if isinstance(name, PromptFormat):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        msg = f"unknown prompt format {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        raise ValueError(msg) from None


def available_prompt_formats() -> list[str]:
    """The names of the registered prompt formats."""
    return sorted(_REGISTRY)


def render_chat(tokenizer: Any, messages: Sequence[Message]) -> str:
    """Chat messages as the prompt a model completes (inference and training alike).

    The tokenizer's chat template with the generation prompt when it has one, else plain
    ``Role: content`` turns ending in ``Assistant:``.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
        return str(text)
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])
