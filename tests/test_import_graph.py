"""The import graph of src/xtts_finetune has no cycle: the dependency between two stages goes one way.

The graph is read from the source with `ast`, module-level and function-level imports alike (a lazy import
inside a function is still a dependency). An edge goes to the module named, or to `package.name` when that
is a submodule; the implicit import of a parent package's `__init__` is not an edge, so a package's
`__init__` may re-export its submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "xtts_finetune"
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, package: str, modules: set[str]) -> list[str]:
    """The project modules one import statement names (resolved against `package` when relative)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parent, *([base] if base else [])])
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


def import_graph(root: Path = SRC / PACKAGE) -> nx.DiGraph:
    files = {_module_name(path): path for path in root.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for target in _imported(node, package, set(files)):
                while target and target not in files:  # `from a.b import function`: the module a.b
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph.add_edge(name, target)
    return graph


def cycles(graph: nx.DiGraph) -> list[set[str]]:
    """Each group of modules that import one another, directly or through others."""
    return [group for group in nx.strongly_connected_components(graph) if len(group) > 1]


def _reaches(graph: nx.DiGraph, source: str, prefix: str) -> list[str]:
    return sorted(m for m in nx.descendants(graph, source) if m == prefix or m.startswith(prefix + "."))


GRAPH = import_graph()


def test_the_graph_sees_module_and_function_level_imports():
    # export.py imports these at module level; evaluate/checkpoints.py imports export inside a function.
    assert GRAPH.has_edge("xtts_finetune.export", "xtts_finetune.text.vocab")
    assert GRAPH.has_edge("xtts_finetune.evaluate.checkpoints", "xtts_finetune.export")
    # `from xtts_finetune.evaluate import checkpoints`: the submodule, not the package
    assert GRAPH.has_edge("xtts_finetune.evaluate.run", "xtts_finetune.evaluate.checkpoints")
    edges = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])
    assert cycles(edges) == [{"a", "b", "c"}]


def test_export_never_imports_evaluation():
    """Evaluation exports checkpoints to speak them; export reads the recommendation from evaluation's file."""
    assert _reaches(GRAPH, "xtts_finetune.export", "xtts_finetune.evaluate") == []
    assert "xtts_finetune.export" in nx.descendants(GRAPH, "xtts_finetune.evaluate")


def test_text_stages_import_one_way():
    """frontends <- vocab <- coverage: the front ends need neither the vocabulary nor the coverage check."""
    frontends, vocab, coverage = (f"xtts_finetune.text.{m}" for m in ("frontends", "vocab", "coverage"))
    assert not {vocab, coverage} & nx.descendants(GRAPH, frontends)
    assert coverage not in nx.descendants(GRAPH, vocab)


def test_no_import_cycle_in_the_package():
    found = cycles(GRAPH)
    unexpected = [sorted(group) for group in found]
    assert not unexpected, "import cycles:\n" + "\n".join(" <-> ".join(group) for group in unexpected)
