"""How well `Selection.stop_probability` reads as "these passages suffice", on held-out data.

    python release/stop_calibration.py MODEL DATA [DATA ...]

For each question, the event is "the selection holds every gold passage among the candidates"
(for a question with none: always true, so k = 0 is right there). Prints, per file, the mean
stop probability against the event's frequency, the expected calibration error over 5 bins,
and the Brier score.
"""

from __future__ import annotations

import sys

from dynrag import Reranker
from dynrag.data.readers import read_examples


def main() -> None:
    """Measure every file given."""
    rr = Reranker.from_pretrained(sys.argv[1])
    print("| data | questions | mean stop probability | suffices (rate) | ECE (5 bins) | Brier |")
    print("|---|---|---|---|---|---|")
    for path in sys.argv[2:]:
        examples = read_examples(path)
        pairs = []
        for start in range(0, len(examples), 16):
            chunk = examples[start : start + 16]
            sels = rr.rerank_batch([e.question for e in chunk], [e.passages for e in chunk])
            for ex, sel in zip(chunk, sels, strict=True):
                suffices = set(ex.gold or []) <= set(sel.indices)
                pairs.append((float(sel.stop_probability or 0.0), float(suffices)))
        bins: list[list[tuple[float, float]]] = [[] for _ in range(5)]
        for p, y in pairs:
            bins[min(int(p * 5), 4)].append((p, y))
        n = len(pairs)
        ece = sum(
            len(b) / n * abs(sum(p for p, _ in b) / len(b) - sum(y for _, y in b) / len(b))
            for b in bins
            if b
        )
        brier = sum((p - y) ** 2 for p, y in pairs) / n
        mean_p = sum(p for p, _ in pairs) / n
        rate = sum(y for _, y in pairs) / n
        name = path.rsplit("/", 1)[-1]
        print(f"| {name} | {n} | {mean_p:.3f} | {rate:.3f} | {ece:.3f} | {brier:.3f} |")


if __name__ == "__main__":
    main()
