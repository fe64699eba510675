"""Dependencies point one way (docs/architecture.md): read from the source's AST.

- no import cycle between modules of ``edge`` and ``sync``;
- ``sync`` builds on the core of ``edge``; the core never imports ``sync``, and
  neither imports the composition layers (``edge.cli``, ``edge.runtime``), which
  alone assemble both;
- no project import inside a function (the way a cycle hides) outside ``edge.cli``,
  whose lazy imports keep ``edge --help`` fast, except the few listed in
  :data:`LAZY_ALLOWED`. Third-party imports (matplotlib, motmetrics...) are not
  project imports and may be lazy anywhere.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("edge", "sync")
COMPOSITION = ("edge.cli", "edge.runtime", "edge.__main__")  # __main__: `python -m edge`

# (importing module, imported module): lazy project imports with a reason.
LAZY_ALLOWED = {
    # Loading a site config fits the cameras' calibrations, which needs OpenCV; plain
    # config tooling (validate-config, the web's admin page) should not load it.
    ("edge.config.loader", "edge.calibration"),
    # matplotlib is the optional ``report`` extra: load_plots turns its absence into
    # a one-line hint instead of an ImportError at import time.
    ("edge.report.html", "edge.report.plots"),
    # Each service process loads only its own stack (paho, the fusion solver, scapy,
    # uvicorn): ``edge run sync`` must not import the web server, and so on.
    ("edge.runtime.services", "sync.publisher"),
    ("edge.runtime.services", "edge.runtime.fusion_worker"),
    ("edge.runtime.services", "edge.wifi.service"),
    ("edge.runtime.services", "edge.web.server"),
}


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module
    target: str  # the project module imported
    line: int
    lazy: bool  # inside a function
    type_only: bool  # under ``if TYPE_CHECKING:``


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package) for every module of the project."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _resolve(name: str, modules: dict[str, tuple[Path, bool]]) -> str | None:
    """The project module an import of ``name`` loads (its longest known prefix)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.Import | ast.ImportFrom, package: str, modules: dict) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        # ``from pkg import sub`` loads the submodule when there is one.
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    return [target for name in names if (target := _resolve(name, modules))]


def project_imports(root: Path = ROOT) -> list[Import]:
    """Every import of a project module by a project module."""
    modules = _modules(root)
    found: list[Import] = []
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]

        def visit(node: ast.AST, lazy: bool, type_only: bool, name: str = name,
                  package: str = package) -> None:
            for child in ast.iter_child_nodes(node):
                child_lazy = lazy or isinstance(
                    child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                child_type_only = type_only or (
                    isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
                if isinstance(child, ast.Import | ast.ImportFrom):
                    found.extend(
                        Import(name, target, child.lineno, lazy, type_only)
                        for target in dict.fromkeys(_targets(child, package, modules))
                    )
                visit(child, child_lazy, child_type_only)

        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False, False)
    return found


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """Groups of modules that import each other at import time (Tarjan's SCCs)."""
    graph: dict[str, set[str]] = {}
    for item in imports:
        if not item.lazy and not item.type_only and item.source != item.target:
            graph.setdefault(item.source, set()).add(item.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def lazy_project_imports(imports: list[Import]) -> list[Import]:
    """Project imports inside functions outside ``edge.cli`` not allowed by name."""
    return [
        item for item in imports
        if item.lazy and not _within(item.source, ("edge.cli",))
        and (item.source, item.target) not in LAZY_ALLOWED
    ]


def test_no_import_cycles():
    assert import_cycles(project_imports()) == []


def test_core_never_imports_sync_or_the_composition_layers():
    wrong = [
        f"{item.source}:{item.line} imports {item.target}"
        for item in project_imports()
        if not _within(item.source, COMPOSITION)
        and (_within(item.target, COMPOSITION)
             or (_within(item.source, ("edge",)) and _within(item.target, ("sync",))))
    ]
    assert wrong == [], "move the shared piece down into edge, or the wiring into edge.runtime"


def test_no_lazy_project_imports_outside_the_cli():
    wrong = [f"{item.source}:{item.line} imports {item.target} inside a function"
             for item in lazy_project_imports(project_imports())]
    assert wrong == [], "import at module level; a cycle means a piece must move down a layer"


def test_only_the_cli_imports_the_report():
    """The HTML report is a tool on top of replay and evaluation: ``edge replay``
    once imported it for a file check and the annotated video, so the appliance's
    pipeline loaded the report's package."""
    wrong = [f"{item.source}:{item.line} imports {item.target}"
             for item in project_imports()
             if _within(item.target, ("edge.report",))
             and not _within(item.source, ("edge.report", "edge.cli"))]
    assert wrong == [], "move what both need (files, video) out of edge.report"


def test_the_allow_list_has_no_stale_entries():
    lazy = {(item.source, item.target) for item in project_imports() if item.lazy}
    assert LAZY_ALLOWED - lazy == set()


def test_the_checks_catch_what_they_forbid(tmp_path):
    """The checker itself, on a tiny project with one of each fault."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "edge" / "a.py").write_text("from edge import b\n")
    (tmp_path / "edge" / "b.py").write_text(
        "from edge.a import x\n\ndef f():\n    from sync import s\n")
    (tmp_path / "sync" / "s.py").write_text("from edge import a\n")
    imports = project_imports(tmp_path)
    assert import_cycles(imports) == [["edge.a", "edge.b"]]
    assert [(i.source, i.target) for i in lazy_project_imports(imports)] == [("edge.b", "sync.s")]
