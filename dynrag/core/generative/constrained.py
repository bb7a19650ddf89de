"""Constrained decoding: the model can only write a valid selection.

The grammar is ``None`` or ``[i], [j], ...`` with ids in ``1..N``, no id twice, at most ``max_k``
ids and at least ``min_k`` before the end. It is checked character by character, so it works with
any tokenizer and keeps the tokenizer's own merges (SmolLM2 writes ``],`` as one token): at each
step a token is allowed when its text is a valid continuation. Only tokens made of grammar
characters are ever candidates, found once per tokenizer, so each step looks at a few hundred
tokens rather than the whole vocabulary.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from transformers import LogitsProcessor

from dynrag.core.generative.backends.base import GrammarSpec
from dynrag.core.generative.prompts import PromptFormat

__all__ = ["SelectionConstraint", "SelectionGrammar", "SelectionLogitsProcessor"]

_SPACE_MARKERS = {"Ġ": " ", "▁": " ", "Ċ": "\n"}


def _token_text(token: str) -> str:
    for marker, char in _SPACE_MARKERS.items():
        token = token.replace(marker, char)
    return token


class SelectionGrammar:
    """The tokens of one tokenizer that can take part in one prompt format's selection grammar."""

    _cache: ClassVar[weakref.WeakKeyDictionary[Any, dict[str, SelectionGrammar]]] = (
        weakref.WeakKeyDictionary()
    )
    _lock = threading.Lock()

    def __init__(self, tokenizer: Any, fmt: PromptFormat) -> None:
        self.fmt = fmt
        alphabet = set(fmt.id_open + fmt.id_close + fmt.separator + fmt.none_text + "0123456789 ")
        self.alphabet = "".join(sorted(alphabet))
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self.by_first_char: dict[str, list[tuple[int, str]]] = {}
        self.text_of: dict[int, str] = {}
        for token, token_id in tokenizer.get_vocab().items():
            text = _token_text(token)
            if token_id in special or not text or not set(text) <= alphabet:
                continue
            self.by_first_char.setdefault(text[0], []).append((token_id, text))
            self.text_of[token_id] = text

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, fmt: PromptFormat) -> SelectionGrammar:
        """A grammar for ``tokenizer`` and ``fmt``, built once per tokenizer and cached."""
        with cls._lock:
            per_format = cls._cache.setdefault(tokenizer, {})
            if fmt.name not in per_format:
                per_format[fmt.name] = cls(tokenizer, fmt)
            return per_format[fmt.name]

    def allowed_tokens(self, constraint: SelectionConstraint) -> list[int]:
        """The token ids whose text ``constraint`` accepts next."""
        allowed: list[int] = []
        for char in self.alphabet:
            if not constraint.accepts(char):
                continue
            allowed.extend(
                tid for tid, text in self.by_first_char.get(char, ()) if constraint.accepts(text)
            )
        return allowed


State = tuple[str, str, tuple[int, ...]]
"""``(phase, buffer, chosen)``: grammar phase, the partial text of that phase, 0-based ids."""


@dataclass
class SelectionConstraint:
    """Where one sequence stands in the grammar, updated as characters are written.

    Phases: ``start`` (nothing yet), ``none`` (a prefix of the none text), ``opening``/``open``
    (inside ``id_open``, then the digits), ``item`` (an item is complete), ``sep``/``sep_done``
    (inside a separator, then after it), ``done`` (the none text is complete).
    """

    spec: GrammarSpec
    """The grammar enforced (its prompt format, candidates and bounds)."""
    state: State = ("start", "", ())
    finished: bool = False

    def __post_init__(self) -> None:
        self.fmt = self.spec.fmt
        self.cap = self.spec.cap
        self.min_k = self.spec.floor
        self.allow_none = self.spec.allow_none
        self._ids = {str(i) for i in range(1, self.spec.num_candidates + 1)}
        self._sep = self.fmt.separator.rstrip(" ") or self.fmt.separator

    @property
    def chosen(self) -> list[int]:
        """The 0-based ids written so far, in order."""
        return list(self.state[2])

    def _step(self, state: State, char: str) -> State | None:
        """The state after writing ``char``, or None when ``char`` leaves the grammar."""
        phase, buf, chosen = state
        fmt = self.fmt
        if phase in ("start", "sep_done"):
            if char == " ":
                return state
            if (
                phase == "start"
                and self.allow_none
                and self.min_k == 0
                and fmt.none_text.startswith(char)
            ):
                return ("done", "", chosen) if fmt.none_text == char else ("none", char, chosen)
            if self.cap > len(chosen) and fmt.id_open.startswith(char):
                return ("open", "", chosen) if fmt.id_open == char else ("opening", char, chosen)
            return None
        if phase in ("none", "opening", "sep"):
            target = {"none": fmt.none_text, "opening": fmt.id_open, "sep": self._sep}[phase]
            cand = buf + char
            if cand == target:
                after = {"none": "done", "opening": "open", "sep": "sep_done"}[phase]
                return (after, "", chosen)
            return (phase, cand, chosen) if target.startswith(cand) else None
        if phase == "open":
            used = {str(i + 1) for i in chosen}
            if char.isdigit():
                digits = buf + char
                if digits[0] == "0" or not any(s.startswith(digits) for s in self._ids - used):
                    return None
                return ("open", digits, chosen)
            if char == fmt.id_close and buf in self._ids and buf not in used:
                return ("item", "", (*chosen, int(buf) - 1))
            return None
        if phase == "item":
            if len(chosen) >= self.cap:
                return None
            if self._sep.startswith(char):
                return ("sep_done", "", chosen) if self._sep == char else ("sep", char, chosen)
            return None
        return None  # "done": nothing more may be written

    def _run(self, text: str) -> State | None:
        state = self.state
        for char in text:
            nxt = self._step(state, char)
            if nxt is None:
                return None
            state = nxt
        return state

    def accepts(self, text: str) -> bool:
        """Whether ``text`` may be written next without leaving the grammar."""
        return self._run(text) is not None

    def advance(self, text: str) -> None:
        """Record that ``text`` was written; text outside the grammar ends the sequence."""
        state = self._run(text)
        if state is None:
            self.finished = True
        else:
            self.state = state

    def can_end(self) -> bool:
        """Whether the sequence may end now."""
        phase, _, chosen = self.state
        if phase == "done":
            return True
        if phase == "item":
            return len(chosen) >= self.min_k
        # Nothing can be written at all (no candidates, or max_k == 0): end at once.
        return phase == "start" and self.cap == 0 and not self.allow_none


class SelectionLogitsProcessor(LogitsProcessor):
    """A `transformers` logits processor that only admits the selection grammar.

    One `SelectionConstraint` per row of the batch (with ``num_return_sequences`` = n, the caller
    repeats each prompt's constraint n times). Finished rows are left alone; `generate` pads them.
    """

    def __init__(
        self,
        grammar: SelectionGrammar,
        constraints: Sequence[SelectionConstraint],
        eos_token_ids: Sequence[int],
        prompt_length: int,
    ) -> None:
        self.grammar = grammar
        self.constraints = list(constraints)
        self.eos_token_ids = list(eos_token_ids)
        self._eos = set(self.eos_token_ids)
        self._seen = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Mask every token that would leave the grammar."""
        length = input_ids.shape[1]
        if length > self._seen:
            for row, tokens in enumerate(input_ids[:, self._seen :].tolist()):
                cons = self.constraints[row]
                for token in tokens:
                    if cons.finished:
                        break
                    if token in self._eos:
                        cons.finished = True
                    else:
                        cons.advance(self.grammar.text_of.get(token, "\x00"))
            self._seen = length
        mask = torch.full_like(scores, float("-inf"))
        for row, cons in enumerate(self.constraints):
            if cons.finished:
                mask[row] = 0.0
                continue
            allowed = self.grammar.allowed_tokens(cons)
            if cons.can_end() or not allowed:
                allowed.extend(self.eos_token_ids)
            mask[row, allowed] = 0.0
        return scores + mask  # type: ignore[return-value]


def _rx(text: str) -> str:
    """Escape regex metacharacters only (some structured-output engines reject an escaped space)."""
    return re.sub(r"([\\.^$*+?{}\[\]|()])", r"\\\1", text)


def _id_alternatives(num_candidates: int) -> list[str]:
    return [str(i) for i in range(num_candidates, 0, -1)]  # longest first for regex engines


def selection_regex(spec: GrammarSpec) -> str:
    """A regular expression of the selection grammar, for servers with regex-structured output.

    A regex cannot forbid repeated ids; duplicates are dropped after decoding by the parser.
    """
    fmt = spec.fmt
    ids = "|".join(_id_alternatives(spec.num_candidates))
    item = f"{_rx(fmt.id_open)}(?:{ids}){_rx(fmt.id_close)}"
    options = []
    if spec.cap >= 1:
        low, high = spec.repeats
        options.append(f"{item}(?:{_rx(fmt.separator)}{item}){{{low},{high}}}")
    if spec.none_allowed:
        options.append(_rx(fmt.none_text))
    return "|".join(f"(?:{o})" for o in options)


def selection_gbnf(spec: GrammarSpec) -> str:
    """The selection grammar in llama.cpp's GBNF, for llama.cpp-based servers."""
    fmt = spec.fmt

    def lit(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    ids = " | ".join(lit(s) for s in _id_alternatives(spec.num_candidates))
    rules = [f"id ::= {ids}", f"item ::= {lit(fmt.id_open)} id {lit(fmt.id_close)}"]
    options = []
    if spec.cap >= 1:
        low, high = spec.repeats
        rules.append(f"list ::= item ({lit(fmt.separator)} item){{{low},{high}}}")
        options.append("list")
    if spec.none_allowed:
        options.append(lit(fmt.none_text))
    return "\n".join([f"root ::= {' | '.join(options)}", *rules]) + "\n"
