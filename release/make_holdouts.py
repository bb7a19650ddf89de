"""Write the held-out splits: 2WikiMultihopQA, MuSiQue, and HotpotQA validation without gold.

Every third record of the 2WikiMultihopQA and MuSiQue files, and the HotpotQA validation
questions without their gold passages.

    python release/make_holdouts.py

The encoder recipe (configs/minilm-cut.yaml) lists the first two files under ``data.exclude``, so
its models never train on these questions; ``dynrag eval`` measures them there. Records are
copied unchanged, in their original formats.

``hotpotqa_val_nogold.json`` holds the 100 HotpotQA validation questions (excluded from training
too) with their two gold paragraphs removed and no supporting facts: eight topical distractors
and nothing that answers the question, where the right selection is k = 0.
"""

from __future__ import annotations

import json
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "data" / "heldout"


def main() -> None:
    """Write both files into data/heldout."""
    wiki = json.loads((SHARED / "2wikimultihopqa/2wikimultihopqa_dev_subset.json").read_text())
    held = wiki[::3]
    (OUT / "2wiki_heldout.json").write_text(json.dumps(held, ensure_ascii=False) + "\n")
    lines = (SHARED / "musique/musique_ans_v1.0_train_subset.jsonl").read_text().splitlines()
    records = [line for line in lines if line.strip()][::3]
    (OUT / "musique_heldout.jsonl").write_text("\n".join(records) + "\n")
    val = json.loads((SHARED / "hotpotqa/hotpot_dev_distractor_val.json").read_text())
    nogold = []
    for record in val:
        gold = {title for title, _ in record["supporting_facts"]}
        context = [c for c in record["context"] if c[0] not in gold]
        nogold.append({**record, "supporting_facts": [], "context": context})
    (OUT / "hotpotqa_val_nogold.json").write_text(json.dumps(nogold, ensure_ascii=False) + "\n")
    print(
        f"2wiki: {len(held)} of {len(wiki)}; musique: {len(records)} of {len(lines)}; "
        f"hotpotqa val without gold: {len(nogold)}"
    )


if __name__ == "__main__":
    main()
