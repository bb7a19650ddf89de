"""DynamicReranker behaviour through its public API."""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Sequence
from typing import Any

import pytest

from dynrag import GenerativeReranker, Passage, SelectionPolicy, SelectionStatus
from dynrag.core.generative.backends.base import GenerationRequest, SamplingParams


class KeywordBackend:
    """A rule-based 'model' for exact tournament checks: it writes the ids of the passages whose
    content holds the word GOLD, in the order of the number after it (GOLD1 first)."""

    name = "keyword"

    def __init__(self, limit: int | None = None) -> None:
        self.calls: list[int] = []
        self.limit = limit

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def truncate(self, text: str, max_tokens: int) -> tuple[str, bool]:
        words = text.split()
        return (" ".join(words[:max_tokens]), True) if len(words) > max_tokens else (text, False)

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[list[str]]:
        out = []
        for req in requests:
            user = req.messages[-1]["content"]
            found = re.findall(r"^(\d+)\. Topic: .*\nContent: .*?GOLD(\d+)", user, re.MULTILINE)
            self.calls.append(len(re.findall(r"^\d+\. Topic:", user, re.MULTILINE)))
            found = sorted(found, key=lambda pair: int(pair[1]))[: self.limit]
            out.append([", ".join(f"[{i}]" for i, _ in found) or "None"] * params.n)
        return out


def candidates(n: int, gold: dict[int, int]) -> list[Passage]:
    return [
        Passage(title=f"t{i}", text=f"text {i}" + (f" GOLD{gold[i]}" if i in gold else ""))
        for i in range(n)
    ]


def test_small_lists_take_one_call() -> None:
    backend = KeywordBackend()
    rr = GenerativeReranker(backend, window_size=20)
    sel = rr.rerank("q", candidates(10, {7: 1, 2: 2}))
    assert sel.indices == [7, 2]
    assert sel.model_calls == 1
    assert backend.calls == [10]


def test_tournament_maps_window_ids_back_to_the_whole_list() -> None:
    backend = KeywordBackend()
    rr = GenerativeReranker(backend, window_size=5)
    gold = {0: 3, 13: 1, 22: 2, 7: 4}
    sel = rr.rerank("q", candidates(23, gold))
    # Gold passages in later windows are found and ranked by the final round.
    assert sel.indices == [13, 22, 0, 7]
    assert [p.title for p in sel.passages] == ["t13", "t22", "t0", "t7"]
    assert sel.model_calls == 6  # 5 windows of at most 5, then one final round
    assert backend.calls[-1] == 4


def test_tournament_with_no_survivor_is_none() -> None:
    rr = GenerativeReranker(KeywordBackend(), window_size=4)
    sel = rr.rerank("q", candidates(9, {}))
    assert sel.indices == []
    assert sel.status == SelectionStatus.NONE


def test_tournament_recurses_when_survivors_exceed_a_window() -> None:
    backend = KeywordBackend(limit=2)
    rr = GenerativeReranker(backend, window_size=4)
    gold = {i: 40 - i for i in range(0, 40, 3)}  # 14 gold; each window keeps its best two
    sel = rr.rerank("q", candidates(40, gold))
    assert sel.indices == [39, 36]
    assert sel.status == SelectionStatus.OK
    assert len(backend.calls) > 11  # more than one round of windows before the final


def test_tournament_that_keeps_everything_ends() -> None:
    backend = KeywordBackend()
    rr = GenerativeReranker(backend, window_size=3)
    gold = {i: 20 - i for i in range(0, 20, 2)}  # every window keeps all its gold
    sel = rr.rerank("q", candidates(20, gold))
    assert sorted(sel.indices) == sorted(gold)
    assert sel.status == SelectionStatus.REPAIRED
    assert any("interleaved" in note for note in sel.notes)


def test_empty_passages_do_not_call_the_model() -> None:
    backend = KeywordBackend()
    sel = GenerativeReranker(backend).rerank("q", [])
    assert sel.indices == []
    assert sel.k == 0
    assert backend.calls == []


@pytest.mark.parametrize("query", ["", "   \n"])
def test_blank_query_is_a_value_error(query: str) -> None:
    with pytest.raises(ValueError, match="query is empty"):
        GenerativeReranker(KeywordBackend()).rerank(query, ["a"])


def test_bad_passage_is_a_type_error_naming_its_position() -> None:
    with pytest.raises(TypeError, match="passage 2"):
        GenerativeReranker(KeywordBackend()).rerank("q", ["a", "b", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="passage 0"):
        GenerativeReranker(KeywordBackend()).rerank("q", [{"title": "no text"}])


def test_mixed_inputs_are_accepted_and_not_mutated() -> None:
    items: list[Any] = [
        "plain GOLD2",
        Passage(text="p", title="T"),
        {"title": "D", "text": "GOLD1"},
    ]
    before = copy.deepcopy(items)
    sel = GenerativeReranker(KeywordBackend()).rerank("q", items)
    assert sel.indices == [2, 0]
    assert items == before
    assert sel.passages[0].title == "D"


def test_identical_passages_take_one_place() -> None:
    # the model wrote both copies; the second is reported, not chosen (issue 36 item 12)
    sel = GenerativeReranker(KeywordBackend()).rerank("q", ["same GOLD1", "same GOLD1", "other"])
    assert sel.indices == [0]
    assert any("1 repeats 0" in note for note in sel.notes)


def test_batch_length_mismatch_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="one list of passages per query"):
        GenerativeReranker(KeywordBackend()).rerank_batch(["a", "b"], [["x"]])


def test_rerank_batch_equals_sequential_on_a_real_model(
    tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    examples = hotpot_val[:10]
    queries = [ex["question"] for ex in examples]
    passages = [ex["passages"] for ex in examples]
    # Uneven candidate counts in one batch, to exercise left padding.
    passages[3] = passages[3][:4]
    passages[5] = passages[5][:7]
    # min_k=1: a random model otherwise often writes None, which would test little.
    policy = SelectionPolicy(min_k=1)
    batch = tiny_reranker.rerank_batch(queries, passages, policy=policy)
    one_by_one = [
        tiny_reranker.rerank(q, p, policy=policy) for q, p in zip(queries, passages, strict=True)
    ]
    assert [s.indices for s in batch] == [s.indices for s in one_by_one]
    assert [s.raw_output for s in batch] == [s.raw_output for s in one_by_one]
    assert any(s.k > 1 for s in batch)


def test_greedy_is_deterministic(tiny_reranker: Any, hotpot_val: list[Any]) -> None:
    ex = hotpot_val[1]
    first = tiny_reranker.rerank(ex["question"], ex["passages"])
    assert all(
        tiny_reranker.rerank(ex["question"], ex["passages"]).indices == first.indices
        for _ in range(3)
    )


def test_arerank_matches_rerank_under_gather(tiny_reranker: Any, hotpot_val: list[Any]) -> None:
    examples = hotpot_val[:4]
    expected = [tiny_reranker.rerank(ex["question"], ex["passages"]).indices for ex in examples]

    async def run() -> list[list[int]]:
        sels = await asyncio.gather(
            *(tiny_reranker.arerank(ex["question"], ex["passages"]) for ex in examples)
        )
        return [s.indices for s in sels]

    assert asyncio.run(run()) == expected


def test_long_passage_is_truncated_and_logged(
    tiny_reranker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="dynrag.core.generative.reranker")
    long = "the quick brown fox jumps over the lazy dog " * 1200  # ~10k+ tokens
    sel = tiny_reranker.rerank("what does the fox do?", ["short passage", long])
    assert "truncated 1 of 2 passages" in caplog.text
    assert all(0 <= i < 2 for i in sel.indices)
    assert sel.passages == [Passage(text=["short passage", long][i]) for i in sel.indices]


def test_token_budget_counts_with_the_models_tokenizer(
    tiny_reranker: Any, hotpot_val: list[Any]
) -> None:
    ex = hotpot_val[0]
    policy = SelectionPolicy(min_k=3, max_k=3, token_budget=1)
    sel = tiny_reranker.rerank(ex["question"], ex["passages"], policy=policy)
    assert sel.k == 3  # min_k wins over the budget, and says so
    policy = SelectionPolicy(min_k=0, max_k=3, allow_empty=False, token_budget=1)
    sel = tiny_reranker.rerank(ex["question"], ex["passages"], policy=policy)
    assert sel.k == 1  # a selection that may not be empty keeps one passage (issue 19 item 7)
    assert any("token_budget" in note for note in sel.notes)


class ProseBackend(KeywordBackend):
    """A rule-based 'model' that never writes an id: every output is unusable."""

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams
    ) -> list[list[str]]:
        for req in requests:
            user = req.messages[-1]["content"]
            self.calls.append(len(re.findall(r"^\d+\. Topic:", user, re.MULTILINE)))
        return [["I am not sure which of these help."] * params.n for _ in requests]


def test_unusable_output_falls_back_the_same_with_and_without_a_tournament(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 19 item 6: 25 passages, every window unparseable, fallback_k=3 gave k = 25,
    # "repaired", no warning. Item 5: one window, default policy, max_k 4: the warning said 10.
    policy = SelectionPolicy(fallback_k=3)
    for n in (25, 8):
        caplog.clear()
        sel = GenerativeReranker(ProseBackend(), window_size=10, policy=policy).rerank(
            "q", candidates(n, {})
        )
        assert sel.indices == [0, 1, 2]
        assert sel.status == SelectionStatus.FALLBACK
        assert "unparseable output; fell back to 3 of" in caplog.text
    caplog.clear()
    sel = GenerativeReranker(
        ProseBackend(), window_size=10, policy=SelectionPolicy(max_k=4)
    ).rerank("q", candidates(10, {}))
    assert sel.indices == [0, 1, 2, 3]
    assert "fell back to 4 of 10 candidates in retrieval order (max_k: cut 10 -> 4)" in caplog.text


def test_long_query_and_title_are_cut_with_a_note(caplog: pytest.LogCaptureFixture) -> None:
    # Issue 19 item 3: a 20k-character query built a prompt past the model's context.
    backend = KeywordBackend()
    rr = GenerativeReranker(backend, max_query_tokens=8, max_title_tokens=3)
    long_title = Passage(title="a b c d e f g", text="text GOLD1")
    sel = rr.rerank("why " * 5000, [long_title, "other"])
    assert sel.indices == [0]
    assert "query cut to 8 tokens" in sel.notes
    assert "query of 20000 characters cut to 8 tokens" in caplog.text
    state = rr._prepare("why " * 5000, [long_title], rr.policy)
    content = rr._request(rr._first_jobs(0, state)[0], state).messages[-1]["content"]
    assert content.count("why") == 8
    assert "a b c d" not in content
    assert "a b c" in content
