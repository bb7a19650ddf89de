"""Every ```python snippet in the README runs as written, from the repository root.

Snippets that need something outside (a running server, a GPU) are fenced as ```py instead.
"""

from __future__ import annotations

import contextlib
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_snippets() -> None:
    assert len(SNIPPETS) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_runs(index: int, tmp_path: Path) -> None:
    script = tmp_path / f"snippet_{index}.py"
    script.write_text(SNIPPETS[index], encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=README.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llamaindex_query_engine.py", "langchain_retrieval_chain.py"])
def test_example_runs(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(README.parent / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Q: " in proc.stdout
    assert "A: " in proc.stdout


def _closure(requirements: list[str]) -> set[str]:
    """Normalised names of ``requirements`` and everything they install (their own extras
    left out), as installed here."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        with contextlib.suppress(metadata.PackageNotFoundError):
            todo.extend(metadata.requires(name) or [])
    return seen


@functools.cache
def _owners() -> dict[Path, set[str]]:
    """Every installed ``.py`` file and the distributions that install it."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    owners: dict[Path, set[str]] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        for file in dist.files or []:
            if file.suffix == ".py":
                owners.setdefault(Path(dist.locate_file(file)).resolve(), set()).add(name)
    return owners


def _distributions_of(module: str) -> set[str]:
    """The installed distributions holding ``module`` (a dotted name)."""
    from importlib.util import find_spec

    spec = find_spec(module)
    assert spec is not None, module
    assert spec.origin, module
    return _owners().get(Path(spec.origin).resolve(), set())


def test_framework_snippets_run_with_the_extra_they_name() -> None:
    # Issue 19 item 14: the snippets imported packages only the dev extra installed.
    import tomllib

    project = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]
    text = README.read_text(encoding="utf-8")
    checked = 0
    for section in re.split(r"(?m)^## ", text):
        named = re.search(r"pip install 'dynrag\[(\w+)\]'", section)
        if not named or "```python" not in section:
            continue
        extra = named.group(1)
        allowed = _closure(project["dependencies"] + project["optional-dependencies"][extra])
        for snippet in re.findall(r"```python\n(.*?)```", section, re.DOTALL):
            modules = re.findall(r"^(?:from|import) ([\w.]+)", snippet, re.MULTILINE)
            for module in modules:
                if module.split(".")[0] in {"dynrag", "llama_index_dynrag", "langchain_dynrag"}:
                    continue
                dists = _distributions_of(module)
                assert dists & allowed, f"{module} ({dists}) is not installed by dynrag[{extra}]"
                checked += 1
    assert checked >= 6
