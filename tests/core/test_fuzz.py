"""Property-based fuzz of what any model may write: parse + tournament + policy.

At least 100,000 generated outputs per run (each hypothesis example draws a batch of them).
Every result must be a valid selection: unique, in range, within ``max_k``, at least
``min(min_k, n)``, never empty where empty is not allowed, and within the token budget unless
that would go below the floor.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynrag.core.generative.parsing import parse_selection
from dynrag.core.generative.tournament import first_round, next_round
from dynrag.core.policy import SelectionPolicy
from dynrag.core.types import ParseResult, ParseStatus, Passage, SelectionStatus

OUTPUTS_PER_EXAMPLE = 250
EXAMPLES = 420
MINIMUM_OUTPUTS = 100_000

# Pieces models really write, and pieces they should not: ids in every form, prose, noise.
PIECES = [
    "[1]",
    "[2]",
    "[3]",
    "[10]",
    "[0]",
    "[-1]",
    "[99999999999999]",
    "[ 4 ]",
    "[Document 5]",
    "[doc #6]",
    "Document [7]",
    "passage 8",
    "2",
    "11",
    "3.5",
    "1e9",
    ", ",
    " > ",
    " and ",
    "None",
    "none of them",
    "NONE",
    " ",
    "\n",
    "I think ",
    "the answer is ",
    "[",
    "]",
    ",",
    "[[2]]",
    "[١]",
    "[²]",
    "\u200b",
    "\ud800",
    "🙂",
    "[3]]",
    "((4))",
    "id 9",
    "#12",
    "-",
]


def output(rng: random.Random) -> str:
    """One model output: a random run of pieces, sometimes pure noise characters."""
    if rng.random() < 0.1:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(0, 40)))
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 12)))


def check(policy: SelectionPolicy, indices: list[int], status: SelectionStatus, n: int) -> None:
    assert len(set(indices)) == len(indices), indices
    assert all(0 <= i < n for i in indices), (indices, n)
    if policy.max_k is not None:
        assert len(indices) <= policy.max_k
    assert len(indices) >= min(policy.floor, n)
    assert isinstance(status, SelectionStatus)


def tournament(n: int, window: int, rng: random.Random) -> tuple[ParseResult, list[int], int]:
    """Drive the pure tournament as `DynamicReranker` does, each window's text generated."""
    windows, final = first_round(n, window)
    made = 0
    while not final:
        choices: list[list[int] | None] = []
        for w in windows:
            parsed = parse_selection(output(rng), len(w))
            made += 1
            usable = parsed.status != ParseStatus.UNPARSEABLE
            choices.append([w[i] for i in parsed.indices] if usable else None)
        outcome = next_round(windows, choices, window)
        if outcome.unparseable:
            return ParseResult(status=ParseStatus.UNPARSEABLE), [], made
        if outcome.decided is not None:
            status = ParseStatus.REPAIRED if outcome.decided else ParseStatus.NONE
            return (
                ParseResult(indices=list(range(len(outcome.decided))), status=status),
                outcome.decided,
                made,
            )
        windows, final = outcome.windows, outcome.final
    candidates = windows[0] if windows else []
    made += 1
    return parse_selection(output(rng), len(candidates)), candidates, made


@st.composite
def policies(draw: st.DrawFn) -> SelectionPolicy:
    """Any consistent policy (the inconsistent ones are refused when built)."""
    min_k = draw(st.integers(0, 6))
    allow_empty = draw(st.booleans())
    low = max(min_k, 0 if allow_empty else 1)
    return SelectionPolicy(
        min_k=min_k,
        max_k=draw(st.one_of(st.none(), st.integers(low, 30))),
        allow_empty=allow_empty,
        fallback_k=draw(st.one_of(st.none(), st.integers(0, 30))),
        token_budget=draw(st.one_of(st.none(), st.integers(1, 60))),
    )


def test_any_model_output_gives_a_valid_selection() -> None:
    made = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        policy=policies(),
        n=st.integers(0, 45),
        window=st.integers(2, 12),
        seed=st.integers(0, 2**32 - 1),
    )
    def run(policy: SelectionPolicy, n: int, window: int, seed: int) -> None:
        nonlocal made
        rng = random.Random(seed)
        # distinct texts: a repeated text is never chosen twice (tests/core/test_policy.py)
        passages = [Passage(text=f"p{i} " + "w " * rng.randrange(1, 20)) for i in range(n)]

        def cost(p: Passage) -> int:
            return len(p.text.split())

        produced = 0
        while produced < OUTPUTS_PER_EXAMPLE:
            parsed, candidates, used = tournament(n, window, rng)
            produced += used
            whole = parsed.model_copy(update={"indices": [candidates[i] for i in parsed.indices]})
            out = policy.apply(whole, passages, cost)
            check(policy, out.indices, out.status, n)
            if policy.token_budget is not None and len(out.indices) > min(policy.floor, n):
                assert sum(cost(passages[i]) for i in out.indices) <= policy.token_budget
        made += produced

    run()
    assert made >= MINIMUM_OUTPUTS, made
