"""Write each head of an encoder model with an ensemble of heads as a model of its own.

    python research/scripts/split_heads.py runs/minilm-cut/encoder-bc/checkpoint /tmp/members

gives ``/tmp/members/head0`` .. ``head<n-1>``: the same scorer, one head each (with the
ensemble's calibration temperature, which does not move the chosen k). Evaluating them beside
the ensemble (``dynrag eval --reranker /tmp/members/head0 ...``) shows the spread that a single
head has from one initialisation to the next, on one scorer.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dynrag import Reranker
from dynrag.core.encoder.head import members
from dynrag.core.encoder.model import EncoderReranker
from dynrag.training.encoder.start import save_over_start

logger = logging.getLogger("split_heads")


def main() -> None:
    """Split the ensemble named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a model folder whose head is an ensemble")
    parser.add_argument("out", type=Path, help="folder for head0, head1, ...")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = Reranker.from_pretrained(args.model)
    if not isinstance(model, EncoderReranker) or model.settings.members < 2:
        raise SystemExit(f"{args.model} is not an encoder model with an ensemble of heads")
    single = model.settings.model_copy(update={"members": 1})
    for i, head in enumerate(members(model.head)):
        one = EncoderReranker(model.scorer, head, settings=single, policy=model.policy)
        out = save_over_start(one, args.out / f"head{i}", args.model)
        logger.info("head %d -> %s", i, out)


if __name__ == "__main__":
    main()
