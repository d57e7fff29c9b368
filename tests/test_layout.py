"""The package's architecture, held by tests: every module imports on its own; the core
(pipeline, checks, graph, consistency, review, store, policy) never reaches Flask, the
web blueprints or the capture extension; and no module imports itself back through
others. The import graph is read from the source (imports inside functions included),
so an import hidden in a function cannot hide a cycle or a dependency."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import feedbackguard

PACKAGE = "feedbackguard"
PACKAGE_DIR = Path(feedbackguard.__file__).resolve().parent
ROOT = PACKAGE_DIR.parent

CORE = tuple(
    f"{PACKAGE}.{name}"
    for name in ("pipeline", "checks", "graph", "consistency", "review", "store", "policy")
)
"""Packages that run in workers and CLIs: no web framework, no web or capture code."""

OUTER = (f"{PACKAGE}.web", f"{PACKAGE}.capture")
"""Packages the core must not import: they sit on top of it."""

FORBIDDEN_EXTERNAL = "flask"


def _within(module: str, packages: tuple[str, ...] | str) -> bool:
    packages = (packages,) if isinstance(packages, str) else packages
    return any(module == p or module.startswith(p + ".") for p in packages)


def _ancestors(module: str) -> list[str]:
    """The packages whose __init__ runs before `module` (the top package included)."""
    parts = module.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    internal: set[str] = field(default_factory=set)
    """Package modules this one imports (resolved to the module, not the name)."""
    external: set[str] = field(default_factory=set)
    """Top-level names of other distributions it imports."""


def _modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        found[name] = Module(name, path, is_package)
    return found


class _Imports(ast.NodeVisitor):
    """Every import statement of a module, at any depth, except under
    `if TYPE_CHECKING:` (those never run)."""

    def __init__(self, module: Module, known: dict[str, Module]) -> None:
        self.module = module
        self.known = known

    def _resolve(self, name: str) -> str | None:
        while name and name not in self.known:
            name = name.rpartition(".")[0]
        return name or None

    def _add(self, name: str, member: str | None = None) -> None:
        if name.split(".")[0] != PACKAGE:
            self.module.external.add(name.split(".")[0])
            return
        candidate = f"{name}.{member}" if member else name
        target = self._resolve(candidate if candidate in self.known else name)
        if target is not None:
            self.module.internal.add(target)

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.name.split(".")
            if not self.module.is_package:
                base.pop()
            base = base[: len(base) - (node.level - 1)]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        for alias in node.names:
            self._add(name, alias.name)


def _graph() -> dict[str, Module]:
    modules = _modules()
    for module in modules.values():
        _Imports(module, modules).visit(ast.parse(module.path.read_text(encoding="utf-8")))
    return modules


def _edges(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> modules whose code runs when it is imported: what it imports and their
    parent packages. A package importing its own submodules (to assemble or re-export
    them) is left out: the submodules import the package back by definition, and
    Python allows it."""
    edges: dict[str, set[str]] = {}
    for name, module in modules.items():
        deps = set()
        for target in module.internal:
            deps.add(target)
            deps.update(_ancestors(target))
        edges[name] = {d for d in deps if d != name and d in modules and not _within(d, name)}
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    done = _run(
        "import importlib, pkgutil, feedbackguard\n"
        "names = [m.name for m in pkgutil.walk_packages(feedbackguard.__path__, 'feedbackguard.')"
        " if m.name.rpartition('.')[2] != '__main__']\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(' '.join(names))\n"
    )
    assert done.returncode == 0, done.stderr
    on_disk = {m for m in _modules() if m != PACKAGE and not m.endswith(".__main__")}
    assert set(done.stdout.split()) == on_disk  # every file is a reachable module


def test_core_entry_points_load_neither_flask_nor_web_nor_capture() -> None:
    done = _run(
        "import sys\n"
        "import feedbackguard.pipeline.runtime, feedbackguard.review.moderation\n"
        "import feedbackguard.pipeline.jobs\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'flask'"
        " or m.startswith(('feedbackguard.web', 'feedbackguard.capture'))))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_core_packages_import_no_flask_web_or_capture() -> None:
    modules = _graph()
    core = [m for m in modules.values() if _within(m.name, CORE)]
    assert set(CORE) <= {m.name for m in core}
    direct = {
        m.name: sorted(
            {t for t in m.internal if _within(t, OUTER)} | ({FORBIDDEN_EXTERNAL} & m.external)
        )
        for m in core
    }
    assert {k: v for k, v in direct.items() if v} == {}


def test_core_packages_reach_no_flask_web_or_capture_through_other_modules() -> None:
    modules = _graph()
    edges = _edges(modules)
    for start in (m for m in modules if _within(m, CORE)):
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert not [m for m in seen if _within(m, OUTER)], start
        assert not [m for m in seen if FORBIDDEN_EXTERNAL in modules[m].external], start


def test_no_import_cycle_among_package_modules() -> None:
    assert _cycle(_edges(_graph())) is None


def test_cycle_finder_sees_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    known = {
        f"{PACKAGE}.a": Module(f"{PACKAGE}.a", tmp_path / "a.py", False),
        f"{PACKAGE}.b": Module(f"{PACKAGE}.b", tmp_path / "b.py", False),
    }
    sources = {
        f"{PACKAGE}.a": f"from {PACKAGE} import b\n",
        f"{PACKAGE}.b": f"def late():\n    from {PACKAGE}.a import thing\n",
    }
    for name, source in sources.items():
        _Imports(known[name], known).visit(ast.parse(source))
    assert _cycle(_edges(known)) == [f"{PACKAGE}.a", f"{PACKAGE}.b", f"{PACKAGE}.a"]
