"""The API reference, generated at build time from the packages themselves.

No module list is typed here: the documented modules are found by walking the packages
(:func:`documented_modules`), so that a new experiment package or widget gets its page
on the next build.  One page per module (``api/<module>.rst``):

* a module's *public members* are the names in its ``__all__`` when it has one, else the
  functions and classes it defines whose names do not start with ``_``;
* each function or class is documented once, in the documented module that defines it
  (``obj.__module__``); a module that only re-exports it (a package's front door, the
  top-level ``transfer_nb``) shows a table linking there;
* other public names (constants) are documented with ``autodata`` on each page that
  lists them, without their value.

:func:`public_members` is the rule the coverage test (``tests/test_docs.py``) checks the
built inventory against.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from pathlib import Path

# Documented module trees: (module, recurse into its public submodules?).  The top-level
# package is documented for its own front door only (its submodules other than those
# below are internal building blocks, reached through the pages of these).
ROOTS = [
    ("transfer_nb", False),
    ("transfer_nb.estimators", False),
    ("transfer_nb.stats", False),
    ("transfer_nb.selection", True),
    ("transfer_nb.experiments", True),
    ("transfer_nb.exercises", False),
    ("transfer_nb_widgets", True),
]


def _walk(name: str, recurse: bool) -> list[str]:
    module = importlib.import_module(name)
    found = [name]
    if recurse and hasattr(module, "__path__"):
        for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            found += _walk(f"{name}.{info.name}", True)
    return found


def documented_modules() -> list[str]:
    """Every module that gets an API page, in page order."""
    names: list[str] = []
    for root, recurse in ROOTS:
        for name in _walk(root, recurse):
            if name not in names:
                names.append(name)
    return names


def public_members(module: types.ModuleType) -> list[tuple[str, object]]:
    """``(name, object)`` of the module's public functions, classes and constants
    (submodules excluded): ``__all__`` when defined, else what the module defines."""
    if hasattr(module, "__all__"):
        names = list(module.__all__)
    else:
        names = [n for n, obj in vars(module).items()
                 if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and getattr(obj, "__module__", None) == module.__name__]
    out = []
    for name in names:
        obj = getattr(module, name)
        if not isinstance(obj, types.ModuleType):
            out.append((name, obj))
    return out


def _is_documentable(obj) -> bool:
    return inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)


def _canonical(obj, modules: dict[str, types.ModuleType]) -> str | None:
    """``module.name`` of the documented module that defines ``obj`` and lists it."""
    home = modules.get(getattr(obj, "__module__", None) or "")
    if home is None:
        return None
    for name, other in public_members(home):
        if other is obj:
            return f"{home.__name__}.{name}"
    return None


def _attr_docs(modname: str) -> set[str]:
    """Module-level names documented with a ``#:`` comment (or a string after them)."""
    from sphinx.pycode import ModuleAnalyzer
    try:
        docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
    except Exception:  # noqa: BLE001 - no source: nothing is commented
        return set()
    return {attr for (scope, attr) in docs if scope == ""}


def _title(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}\n"


def _module_page(name: str, modules: dict[str, types.ModuleType], children: list[str]) -> str:
    module = modules[name]
    parent = importlib.import_module(name.rpartition(".")[0]) if "." in name else None
    # A submodule whose name the package rebinds to something else (pge/run.py beside the
    # function pge.run): its module entry is not indexed, so the two never collide.
    shadowed = False
    if parent is not None:
        other = getattr(parent, name.rpartition(".")[2], module)
        shadowed = other is not module and _canonical(other, modules) in (None, name)
    lines = [_title(f"``{name}``"), f".. automodule:: {name}"]
    if shadowed:
        lines.append("   :no-index:")
    lines += ["", f".. currentmodule:: {name}", ""]
    linked, full, data = [], [], []
    for member, obj in public_members(module):
        if not _is_documentable(obj):
            data.append((member, obj))
            continue
        canon = _canonical(obj, modules)
        if canon is not None and canon != f"{name}.{member}":
            linked.append((member, canon))
        else:
            full.append((member, obj))
    if linked:
        lines += [_title("Re-exported here", "-"),
                  "Documented in the module that defines them:", "",
                  ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   ~{canon.removeprefix(name + '.')}" for _, canon in linked]
        lines.append("")
    if full:
        lines += [_title("Functions and classes", "-"),
                  ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {member}" for member, _ in full]
        lines.append("")
        for member, obj in full:
            if inspect.isclass(obj):
                lines += [f".. autoclass:: {member}", "   :members:", "   :show-inheritance:", ""]
            else:
                lines += [f".. autofunction:: {member}", ""]
    if data:
        # A constant's own documentation is its ``#:`` comment when it has one; otherwise
        # autodoc would show its type's docstring (dict's), so only name and type are shown.
        commented = _attr_docs(name)
        lines += [_title("Constants", "-")]
        for member, obj in data:
            if member in commented:
                lines += [f".. autodata:: {member}", "   :no-value:", ""]
            else:
                lines += [f".. py:data:: {member}", f"   :type: {type(obj).__name__}", ""]
    if children:
        lines += [_title("Submodules", "-"), ".. toctree::", "   :maxdepth: 1", ""]
        lines += [f"   {child}" for child in children]
        lines.append("")
    return "\n".join(lines)


def write_api(outdir: Path) -> list[str]:
    """Write ``outdir/<module>.rst`` for every documented module and ``outdir/index.rst``;
    return the module names.  Unchanged files are not rewritten (Sphinx then keeps them)."""
    outdir.mkdir(parents=True, exist_ok=True)
    names = documented_modules()
    modules = {n: importlib.import_module(n) for n in names}
    pages = {}
    for name in names:
        children = [n for n in names if n.rpartition(".")[0] == name]
        pages[f"{name}.rst"] = _module_page(name, modules, children)
    tops = [n for n in names if n.rpartition(".")[0] not in names]
    pages["index.rst"] = "\n".join([
        _title("API reference"),
        "Generated from the docstrings of the public modules (NumPy style).  ",
        "``import transfer_nb as tnb`` for the library; ``import transfer_nb_widgets as widgets``",
        "for the Jupyter widgets (the repository folder ``widgets/``).",
        "", ".. toctree::", "   :maxdepth: 2", ""] + [f"   {n}" for n in tops] + [""])
    for old in outdir.glob("*.rst"):
        if old.name not in pages:
            old.unlink()
    for file, text in pages.items():
        path = outdir / file
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return names
