"""The package layout of docs/design.md ("Layout"): import directions, not taste.

Import cycles make modules impossible to read or test alone and have cost us
initialisation-order bugs; this pins that the project's modules form a DAG, counting
imports inside functions too (a lazy import is still a dependency), and that the
model stack is layered (runtime, formats, watermark) <- sampling, training <- tiny <- loading,
with gguf_cache <- known, loading for GGUF files and fetched models.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "sandbox", "tasks")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imported(path: Path, name: str, known: Iterable[str]) -> set[str]:
    """Project modules `path` imports anywhere in its body (module or function level)."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    found.add(full)
                elif base in known:
                    found.add(base)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(path, name, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_project_modules_import_each_other_without_cycles() -> None:
    graph = _graph()
    assert len(graph) > 50, "the module scan found too little; is ROOT right?"
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_model_stack_is_layered() -> None:
    graph = _graph()
    model = {m for m in graph if m.startswith("harness.model.")}
    assert {"harness.model.runtime", "harness.model.sampling", "harness.model.training",
            "harness.model.tiny", "harness.model.loading"} <= model
    allowed = {
        "harness.model.runtime": set(),
        "harness.model.formats": set(),
        "harness.model.watermark": set(),
        "harness.model.sampling": {"harness.model.runtime", "harness.model.formats",
                                   "harness.model.watermark"},
        "harness.model.training": {"harness.model.runtime", "harness.model.formats"},
        "harness.model.tiny": {"harness.model.runtime", "harness.model.training"},
        "harness.model.gguf_cache": {"harness.model.runtime"},
        "harness.model.known": {"harness.model.runtime", "harness.model.gguf_cache"},
        "harness.model.loading": {"harness.model.runtime", "harness.model.tiny",
                                  "harness.model.gguf_cache", "harness.model.known"},
    }
    for module, may in allowed.items():
        assert graph[module] & model <= may, f"{module} imports {graph[module] & model - may}"
    upward = ("harness.experiment", "harness.analysis", "harness.commands", "harness.scaleout",
              "harness.runfiles")
    for module in model:
        assert not {m for m in graph[module] if m.startswith(upward)}, module
    # the config tree is below everything: it writes its TOML through harness.atomic
    assert not {m for m in graph["harness.config"] if m.startswith(upward)}


def test_the_harness_top_level_holds_only_the_shared_core() -> None:
    top = {p.stem for p in (ROOT / "harness").glob("*.py")}
    assert top == {"__init__", "atomic", "cli", "config", "errors", "progress", "registry"}, (
        "new modules belong in a group (docs/design.md, Layout): " + ", ".join(sorted(top)))
