"""`dynrag eval`: dynamic k against fixed-k baselines on real multi-hop QA."""
