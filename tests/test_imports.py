"""The public surface changes only on purpose."""

import dynrag
import dynrag.core

EXPECTED_DYNRAG = [
    "DynamicReranker",
    "GenerativeReranker",
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
        "import sys, dynrag, dynrag.core.generative.reranker;"
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


def test_core_names_nothing_above_it_not_even_by_a_module_string() -> None:
    """No import and no ``"module:attribute"`` string in dynrag.core points above it.

    Families outside core (the HTTP client) come in through entry points instead.
    """
    import ast
    import re
    from pathlib import Path

    above = re.compile(r"\bdynrag\.(serve|training|eval|data|cli|demo|model_options)\b")
    core = Path(dynrag.core.__file__).parent
    found = []
    for path in sorted(core.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
            ):
                names = [node.value]
            found += [f"{path.relative_to(core)}:{node.lineno}" for n in names if above.search(n)]
    assert not found, found


def test_the_http_client_is_a_family_by_entry_point() -> None:
    from importlib.metadata import entry_points

    points = {p.name: p.value for p in entry_points(group="dynrag.families")}
    assert points["url"] == "dynrag.serve.remote:RemoteReranker"
