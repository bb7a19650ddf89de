"""The generative family's training plot: loss, reward and mean k of every stage a run completed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from dynrag.data.jsonl import read_jsonl

__all__ = ["plot_run"]

logger = logging.getLogger(__name__)


def _history(run_dir: Path, stage: str) -> list[dict[str, Any]]:
    path = run_dir / stage / "metrics.json"
    if not path.is_file():
        return []
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return list(data.get("log_history", []))


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    rows = [(h["step"], h[key]) for h in history if key in h and "step" in h]
    return [float(s) for s, _ in rows], [float(v) for _, v in rows]


def plot_run(run_dir: str | Path) -> Path | None:
    """Write ``plots/training.png`` for a run directory; returns its path (None: nothing yet).

    Panels: behaviour-cloning loss; sampled reward against k; DPO loss and implicit rewards of
    chosen and rejected; GRPO reward and mean k per step.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    panels = []
    bc = _history(run_dir, "bc")
    if bc:
        panels.append(("bc", bc))
    rewards_path = run_dir / "reward" / "rewards.jsonl"
    if rewards_path.is_file():
        panels.append(("samples", list(read_jsonl(rewards_path))))
    for stage in ("dpo", "feedback"):
        hist = _history(run_dir, stage)
        if hist:
            panels.append((stage, hist))
    steps_path = run_dir / "grpo" / "steps.jsonl"
    if steps_path.is_file():
        panels.append(("grpo", list(read_jsonl(steps_path))))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (name, data) in zip(axes[0], panels, strict=True):
        if name == "bc":
            ax.plot(*_series(data, "loss"), label="loss")
            ax.set_title("behaviour cloning")
            ax.set_xlabel("step")
        elif name == "samples":
            ks = [len(s["indices"]) for r in data for s in r["samples"]]
            rs = [s["reward"] for r in data for s in r["samples"]]
            ax.scatter(ks, rs, s=8, alpha=0.4)
            ax.set_title("sampled selections")
            ax.set_xlabel("k")
            ax.set_ylabel("reward")
        elif name in ("dpo", "feedback"):
            for key in ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins"):
                xs, ys = _series(data, key)
                if xs:
                    ax.plot(xs, ys, label=key)
            ax.set_title(f"{name} (DPO)")
            ax.set_xlabel("step")
        else:
            xs = list(range(1, len(data) + 1))
            ax.plot(xs, [d["reward"] for d in data], label="reward")
            ax2 = ax.twinx()
            ax2.plot(xs, [d["mean_k"] for d in data], color="tab:orange", label="mean k")
            ax2.set_ylabel("mean k")
            ax.set_title("GRPO")
            ax.set_xlabel("reward call")
            lines = ax.get_lines() + ax2.get_lines()  # one legend for both axes
            ax.legend(lines, [str(line.get_label()) for line in lines], fontsize=7)
        if name not in ("samples", "grpo"):
            ax.legend(fontsize=7)
    fig.tight_layout()
    out = run_dir / "plots" / "training.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    logger.info("wrote %s", out)
    return out
