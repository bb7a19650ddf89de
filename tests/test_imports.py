"""The public surface changes only on purpose."""

import dynrag
import dynrag.core

EXPECTED_DYNRAG = [
    "DynamicReranker",
    "Passage",
    "Selection",
    "SelectionPolicy",
    "SelectionStatus",
    "__version__",
    "parse_selection",
]


def test_dynrag_all() -> None:
    assert sorted(dynrag.__all__) == sorted(EXPECTED_DYNRAG)


def test_core_imports_no_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dynrag, dynrag.core.reranker;"
        "bad=[m for m in sys.modules if m.split('.')[0] in {'llama_index','langchain_core','trl','vllm'}];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
