"""Write the 2WikiMultihopQA and MuSiQue held-out splits (every third record of each file).

    python scripts/make_holdouts.py

The encoder recipe (configs/minilm-cut.yaml) lists both files under ``data.exclude``, so its
models never train on these questions; ``dynrag eval`` measures them there. Records are copied
unchanged, in their original formats.
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
    print(f"2wiki: {len(held)} of {len(wiki)}; musique: {len(records)} of {len(lines)}")


if __name__ == "__main__":
    main()
