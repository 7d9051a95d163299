"""No import cycle between the files of ``transfer_nb`` (docs/contributing.md, "Layout").

Every module is parsed (``ast``, nothing imported) for the project modules it imports, at
the top of the file and inside functions alike: an import inside a function hides a cycle
from ``python -c "import transfer_nb.x"`` but not from a reader.  Importing ``a.b.c``
runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so those packages count as imported
too (except the importer's own packages, which are already being initialised).
"""
from __future__ import annotations

import ast
from pathlib import Path

import transfer_nb

ROOT = Path(transfer_nb.__file__).resolve().parent


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the package (packages by their name)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _module_of(name: str, modules) -> str | None:
    """The project module ``name`` refers to: itself, or the longest module prefix (an
    attribute of a module: ``transfer_nb.stats.pearson`` -> ``transfer_nb.stats``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: Path, modules) -> list[tuple[str, int, bool]]:
    """``(module, line, inside a function)`` for every project module ``name`` imports,
    with the packages that importing it runs first."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def add(target, line, lazy):
        if target is None:
            return
        parts = target.split(".")
        chain = [".".join(parts[:i]) for i in range(2, len(parts))] + [target]
        for t in chain:
            own = name == t or name.startswith(t + ".")
            if t in modules and not own:
                found.append((t, line, lazy))

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                               ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(_module_of(alias.name, modules), child.lineno, inner)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[:len(package.split(".")) - (child.level - 1)]
                    base = ".".join(up + ([child.module] if child.module else []))
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    add(full if full in modules else _module_of(base, modules),
                        child.lineno, inner)
            visit(child, inner)

    visit(tree, False)
    return found


def import_graph(root: Path = ROOT) -> dict[str, dict[str, list[tuple[int, bool]]]]:
    """``{module: {imported module: [(line, inside a function), ...]}}``."""
    modules = project_modules(root)
    graph: dict = {name: {} for name in modules}
    for name, path in modules.items():
        for target, line, lazy in imports_of(name, path, modules):
            graph[name].setdefault(target, []).append((line, lazy))
    return graph


def find_cycles(graph) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected group of modules (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(set(group))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    cycles = []
    for group in groups:              # a shortest way back to the first module, by BFS
        start = min(group)
        paths = {start: [start]}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w == start:
                    cycles.append(paths[v] + [start])
                    queue = []
                    break
                if w in group and w not in paths:
                    paths[w] = paths[v] + [w]
                    queue.append(w)
    return cycles


def describe(cycle, graph) -> str:
    steps = []
    for a, b in zip(cycle, cycle[1:]):
        line, lazy = graph[a][b][0]
        steps.append(f"{a} (line {line}{', in a function' if lazy else ''}) -> {b}")
    return "; ".join(steps)


def test_no_import_cycle_between_files():
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles (move the shared piece down into a module both " \
                       "import):\n" + "\n".join(describe(c, graph) for c in cycles)


def _write(root: Path, files: dict) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "transfer_nb"


def test_the_detector_sees_a_cycle_hidden_in_a_function(tmp_path):
    pkg = _write(tmp_path, {
        "transfer_nb/__init__.py": "",
        "transfer_nb/a.py": "from transfer_nb.b import g\n",
        "transfer_nb/b.py": "def g():\n    from transfer_nb import a\n    return a\n",
        "transfer_nb/c.py": "import numpy\nfrom transfer_nb import a\n"})
    graph = import_graph(pkg)
    assert find_cycles(graph) == [["transfer_nb.a", "transfer_nb.b", "transfer_nb.a"]]
    assert describe(["transfer_nb.a", "transfer_nb.b", "transfer_nb.a"], graph) == (
        "transfer_nb.a (line 1) -> transfer_nb.b; "
        "transfer_nb.b (line 2, in a function) -> transfer_nb.a")


def test_the_detector_counts_the_packages_an_import_runs(tmp_path):
    # x imports sub.y, which runs sub/__init__.py, which imports x back: a cycle; the
    # package's own __init__ importing its submodule is not one
    pkg = _write(tmp_path, {
        "transfer_nb/__init__.py": "",
        "transfer_nb/x.py": "def f():\n    from transfer_nb.sub.y import h\n",
        "transfer_nb/sub/__init__.py": "from transfer_nb.sub.z import k\n",
        "transfer_nb/sub/y.py": "from . import z\n",
        "transfer_nb/sub/z.py": "from transfer_nb import x\n"})
    graph = import_graph(pkg)
    assert set(graph["transfer_nb.x"]) == {"transfer_nb.sub", "transfer_nb.sub.y"}
    assert set(graph["transfer_nb.sub.y"]) == {"transfer_nb.sub.z"}
    cycles = find_cycles(graph)
    assert len(cycles) == 1 and set(cycles[0]) == {"transfer_nb.x", "transfer_nb.sub",
                                                     "transfer_nb.sub.z"}


#: files whose in-function imports are not yet moved up or explained: they are being
#: edited on another branch (h/confirm); remove a file once its imports are done
PENDING_LAZY: set = set()


def unexplained_lazy_imports(root: Path = ROOT) -> list[str]:
    """``file:line`` of each import of a project module inside a function with no comment
    on its lines or the line above (the comment says what cost it avoids)."""
    modules = project_modules(root)
    out = []
    for name, path in modules.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        lazy_lines = {line for _, line, lazy in imports_of(name, path, modules) if lazy}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno in lazy_lines:
                span = lines[node.lineno - 2:node.end_lineno]
                if not any("#" in text for text in span):
                    out.append(f"{path.relative_to(root).as_posix()}:{node.lineno}")
    return out


def test_every_import_inside_a_function_says_what_it_avoids():
    found = unexplained_lazy_imports()
    pending = {f for f in found if f.split(":")[0] in PENDING_LAZY}
    assert not set(found) - pending, (
        "imports of project modules inside functions without a comment saying what cost "
        "they avoid (move them to the top of the file, or add e.g. '# lazy: pulls in "
        "torch'):\n" + "\n".join(sorted(set(found) - pending)))
    stale = PENDING_LAZY - {f.split(":")[0] for f in found}
    assert not stale, f"remove from PENDING_LAZY (nothing left to do there): {sorted(stale)}"
