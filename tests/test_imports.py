"""The public surface changes only on purpose."""

import dynrag
import dynrag.core

EXPECTED_DYNRAG = [
    "DynamicReranker",
    "Passage",
    "Reranker",
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
        "bad=[m for m in sys.modules if m.split('.')[0] in {'llama_index','langchain_core','trl','vllm','datasets','peft'}];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_training_cli_without_the_train_extra_says_what_to_install() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['trl'] = None\n"  # as if trl were not installed
        "from dynrag.training.cli import main\n"
        "sys.exit(main(['run', '--config', 'x.yaml']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install 'dynrag[train]'" in done.stderr


def test_help_of_both_commands_imports_no_model_code() -> None:
    # Issue 19 item 16: `dynrag-train --help` took 6.4 s importing torch, transformers and TRL.
    import subprocess
    import sys

    heavy = "{'torch', 'transformers', 'trl', 'datasets', 'peft', 'sentence_transformers'}"
    for module in ("dynrag.training.cli", "dynrag.cli"):
        code = (
            f"import sys\nfrom {module} import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {heavy})\n"
            "assert not bad, bad\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, (module, done.stderr[-2000:])
        assert "usage:" in done.stdout


def test_core_imports_nothing_above_it() -> None:
    """dynrag.core imports nothing from serve, training or eval (issue: one interface)."""
    import subprocess
    import sys

    code = (
        "import sys, dynrag.core, dynrag.core.families, dynrag.core.encoder.model, "
        "dynrag.core.generative;"
        "bad=[m for m in sys.modules if m.startswith(('dynrag.serve','dynrag.training','dynrag.eval'))];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
