"""`dynrag eval` output: report.json, report.md and plots."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dynrag.eval.runner import PairedComparison, QuestionRecord, SelectorSummary, compare

__all__ = ["markdown_table", "paired_table", "write_report"]


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _with_ci(summary: SelectorSummary, metric: str) -> str:
    mean = summary.means.get(metric)
    if metric not in summary.ci95:
        return _fmt(mean)
    low, high = summary.ci95[metric]
    return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]"


def markdown_table(summaries: Sequence[SelectorSummary]) -> str:
    """The table a person reads: one row per selector."""
    has_gold = any(s.means.get("sel_f1") is not None for s in summaries)
    head = ["selector", "mean k", "ctx tokens", "EM", "F1 [95% CI]", "acc", "gold logprob [95% CI]"]
    if has_gold:
        head += ["sel P", "sel R", "sel F1 [95% CI]", "nDCG"]
    head += ["rerank s (p50/p95)", "gen s (p50/p95)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        m, lat = s.means, s.latency
        row = [
            s.selector,
            _fmt(m.get("k"), 2),
            _fmt(m.get("context_tokens"), 0),
            _fmt(m.get("em")),
            _with_ci(s, "f1"),
            _fmt(m.get("accuracy")),
            _with_ci(s, "gold_logprob"),
        ]
        if has_gold:
            row += [_fmt(m.get(x)) for x in ("precision", "recall")]
            row += [_with_ci(s, "sel_f1"), _fmt(m.get("ndcg"))]
        row += [
            f"{_fmt(lat.get('rerank_p50'), 2)}/{_fmt(lat.get('rerank_p95'), 2)}",
            f"{_fmt(lat.get('generate_p50'), 2)}/{_fmt(lat.get('generate_p95'), 2)}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def paired_table(comparisons: Sequence[PairedComparison]) -> str:
    """Dynamic against each baseline: mean per-question difference, paired 95% interval."""
    lines = [
        "| selector | baseline | questions | difference [paired 95% CI] | wins/ties/losses |",
        "|---|---|---|---|---|",
    ]
    for c in comparisons:
        low, high = c.ci95
        lines.append(
            f"| {c.selector} | {c.baseline} | {c.questions} | {c.mean_difference:+.3f} "
            f"[{low:+.3f}, {high:+.3f}] | {c.wins}/{c.ties}/{c.losses} |"
        )
    return "\n".join(lines)


def _plots(
    out: Path, records: Sequence[QuestionRecord], summaries: Sequence[SelectorSummary]
) -> list[str]:
    try:
        import matplotlib
    except ImportError as err:
        msg = "plots need matplotlib: pip install 'dynrag[eval]'"
        raise ImportError(msg) from err

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    # k histogram per selector, split by the number of gold passages.
    names = [s.selector for s in summaries]
    cols = min(3, len(names))
    rows_n = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.5 * cols, 3.2 * rows_n), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        rows = [r for r in records if r.selector == name]
        groups: dict[str, list[int]] = {}
        for r in rows:
            label = f"{len(r.gold)} gold" if r.gold is not None else "no labels"
            groups.setdefault(label, []).append(r.k)
        top = max((r.k for r in rows), default=0)
        bins = [b - 0.5 for b in range(top + 2)]
        ax.hist(list(groups.values()), bins=bins, label=list(groups), stacked=True)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("k")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "k_histogram.png", dpi=110)
    plt.close(fig)
    files.append("k_histogram.png")

    # Mean k against the number of gold passages present, one line per selector.
    if any(r.gold is not None for r in records):
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for name in names:
            by_gold: dict[int, list[int]] = {}
            for r in records:
                if r.selector == name and r.gold is not None:
                    by_gold.setdefault(len(r.gold), []).append(r.k)
            xs = sorted(by_gold)
            ax.plot(xs, [sum(by_gold[x]) / len(by_gold[x]) for x in xs], marker="o", label=name)
        top = max((len(r.gold) for r in records if r.gold is not None), default=0)
        ax.plot([0, top], [0, top], color="grey", linestyle=":", label="k = gold count")
        ax.set_xlabel("gold passages among the candidates")
        ax.set_ylabel("mean k chosen")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "k_by_gold.png", dpi=110)
        plt.close(fig)
        files.append("k_by_gold.png")

    # Answer F1 (and gold log-prob) against context tokens.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for s in summaries:
        x = s.means.get("context_tokens") or 0.0
        for ax, metric in ((ax1, "f1"), (ax2, "gold_logprob")):
            y = s.means.get(metric)
            if y is None:
                continue
            ax.scatter([x], [y])
            ax.annotate(s.selector, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax1.set_xlabel("mean context tokens given to the generator")
    ax1.set_ylabel("answer token F1")
    ax2.set_xlabel("mean context tokens given to the generator")
    ax2.set_ylabel("gold answer mean token log-prob")
    fig.tight_layout()
    fig.savefig(out / "f1_vs_tokens.png", dpi=110)
    plt.close(fig)
    files.append("f1_vs_tokens.png")
    return files


def write_report(
    out: Path,
    records: Sequence[QuestionRecord],
    summaries: Sequence[SelectorSummary],
    meta: dict[str, Any],
) -> list[PairedComparison]:
    """Write report.json (summaries and per-question records), report.md and the plots.

    Returns the paired comparisons it wrote (`compare` on selection F1).
    """
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(out, records, summaries)
    paired = compare(records, "sel_f1")
    payload = {
        "meta": meta,
        "summary": {s.selector: s.model_dump(mode="json") for s in summaries},
        "paired": [c.model_dump(mode="json") for c in paired],
        "records": [r.model_dump(mode="json") for r in records],
        "plots": plots,
    }
    (out / "report.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False), "utf-8")
    lines = [
        "# dynrag eval",
        "",
        f"Data: `{meta.get('data')}` ({meta.get('questions')} questions). "
        f"Generator: `{meta.get('generator')}`. Command: `{meta.get('command')}`",
        "",
        markdown_table(summaries),
        "",
        "EM, F1 and accuracy: SQuAD-normalised, max over gold aliases; an empty answer scores 0. "
        "gold logprob: the generator's mean token log-probability of the first gold answer given "
        "the selection (teacher-forced). sel P/R/F1, nDCG: against the gold passages. "
        "95% bootstrap intervals in brackets.",
        "",
        *(
            [
                "Selection F1 of each dynamic selector minus each baseline's, question by "
                "question (an interval that excludes 0: more than noise).",
                "",
                paired_table(paired),
                "",
            ]
            if paired
            else []
        ),
        *[f"![{p}]({p})" for p in plots],
        "",
    ]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return paired
