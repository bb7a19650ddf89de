"""Build data/heldout/heldout_multihop.json: new multi-hop questions that are not in ../shared.

The 24 questions and their two gold passages each were written for this project
(data/heldout/questions.json); eight distractors per question are real Wikipedia paragraphs
from the HotpotQA validation file (never trained on), the ones closest to the question by MiniLM
cosine, so they are on topic. Gold positions are shuffled with a fixed seed. Output: HotpotQA
format, read by `dynrag eval` like any HotpotQA file.

    python release/make_heldout.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from sentence_transformers import SentenceTransformer

from dynrag.core.constants import base_minilm_path

REPO = Path(__file__).resolve().parents[1]
VAL = REPO.parent / "shared" / "data" / "hotpotqa" / "hotpot_dev_distractor_val.json"


def main() -> None:
    """Write the held-out file from questions.json and the HotpotQA validation paragraphs."""
    questions = json.loads((REPO / "data" / "heldout" / "questions.json").read_text())
    pool: dict[str, list[str]] = {}
    for record in json.loads(VAL.read_text()):
        for title, sentences in record["context"]:
            pool.setdefault(title, sentences)
    titles = sorted(pool)
    model = SentenceTransformer(str(base_minilm_path()), device="cpu")
    texts = [f"{t}. {''.join(pool[t])}" for t in titles]
    vectors = model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    rng = random.Random(0)
    out = []
    for q in questions:
        qv = model.encode([q["question"]], normalize_embeddings=True, show_progress_bar=False)[0]
        gold_titles = {t for t, _ in q["gold"]}
        order = sorted(range(len(titles)), key=lambda i: -float(vectors[i] @ qv))
        distractors = [titles[i] for i in order if titles[i] not in gold_titles][:8]
        context = [[t, pool[t]] for t in distractors] + [list(g) for g in q["gold"]]
        rng.shuffle(context)
        out.append(
            {
                "_id": q["_id"],
                "question": q["question"],
                "answer": q["answer"],
                "answer_aliases": q.get("aliases", []),
                "type": q["type"],
                "supporting_facts": [[t, 0] for t, _ in q["gold"]] + [[t, 1] for t, _ in q["gold"]],
                "context": context,
            }
        )
    dest = REPO / "data" / "heldout" / "heldout_multihop.json"
    dest.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(out)} questions to {dest}")


if __name__ == "__main__":
    main()
