"""Sphinx extension of the transfer-nb site: generated pages, offline MathJax, links.

* ``builder-inited``: writes ``tutorials/``, ``api/``, ``cli.rst`` and ``exercises.md``
  (the tutorials' annotated copies, the API pages, the CLI page, the exercise solutions)
  from the repository, so that nothing there is typed by hand;
  a widget without a still image is a warning (an error under ``-W``).
* ``build-finished``: copies MathJax 3 (``es5/``) from the ``django-static-mathjax``
  wheel (a PyPI package that ships the MathJax distribution and nothing else it needs)
  into ``_static/mathjax/``: math renders without any network.
* ``doctree-resolved``: an inline literal in prose such as ``tnb.score_models(...)`` or
  ``widgets.LayerSelector`` becomes a link to its API entry when that entry exists.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util import logging

import tnb_api
import tnb_cli
import tnb_exercises
import tnb_tutorials

logger = logging.getLogger(__name__)

ALIASES = {"tnb": "transfer_nb", "widgets": "transfer_nb_widgets"}
_LITERAL = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+)(?:\(.*\))?$")


def mathjax_dir() -> Path:
    """MathJax's ``es5/`` folder as installed by the ``docs`` extra."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError("MathJax is not installed: pip install -e '.[docs]' "
                             "(it comes from the django-static-mathjax wheel)")
    es5 = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").exists():
        raise ExtensionError(f"{es5} has no tex-mml-chtml.js: reinstall django-static-mathjax")
    return es5


def _generate(app) -> None:
    src = Path(app.srcdir)
    repo = src.parent
    tutorials = tnb_tutorials.write_tutorials(
        repo, src, src / "tutorials", src / "_static" / "widgets")
    for tut in tutorials:
        for png in tut.missing_stills:
            logger.warning(
                "tutorial %s shows a widget with no still image docs/_static/widgets/%s: "
                "run `make docs-widgets` and commit the PNG", tut.stem, png,
                type="tnb", subtype="widget-still")
    tnb_api.write_api(src / "api")
    tnb_cli.write_cli(src / "cli.rst")
    tnb_exercises.write_exercises(src / "exercises.md")


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    es5 = mathjax_dir()
    dest = Path(app.outdir) / "_static" / "mathjax"
    stamp = dest / ".source"
    if stamp.exists() and stamp.read_text() == str(es5):
        return
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(es5, dest)
    stamp.write_text(str(es5))


def _lookup(domain, name: str):
    """The Python domain's entry for ``name`` (aliases resolved), else ``None``."""
    head, _, rest = name.partition(".")
    full = f"{ALIASES.get(head, head)}.{rest}"
    if full in domain.objects:
        return domain.objects[full]
    # An attribute reached through a package's front door: try where it is defined.
    module, _, attr = full.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except Exception:  # noqa: BLE001 - prose may name anything
        return None
    canon = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
    return domain.objects.get(canon)


def _link_stills(doctree, docname: str) -> None:
    """A widget still is shown scaled to the text column: link it to its full size."""
    up = "../" * docname.count("/")
    for image in list(doctree.findall(nodes.image)):
        if "widgets/" not in image["uri"] or isinstance(image.parent, nodes.reference):
            continue
        ref = nodes.reference("", "", refuri=f"{up}_images/{Path(image['uri']).name}",
                              classes=["tnb-still"], reftitle="the still image at full size")
        image.replace_self(ref)
        ref.append(image)


def _link_literals(app, doctree, docname: str) -> None:
    _link_stills(doctree, docname)
    if docname.startswith("api/"):
        return
    domain = app.env.get_domain("py")
    for literal in list(doctree.findall(nodes.literal)):
        if isinstance(literal.parent, (nodes.reference, nodes.literal_block)):
            continue
        m = _LITERAL.match(literal.astext().strip())
        if not m or m.group(1).split(".")[0] not in (*ALIASES, "transfer_nb", "transfer_nb_widgets"):
            continue
        entry = _lookup(domain, m.group(1))
        if entry is None:
            continue
        uri = app.builder.get_relative_uri(docname, entry.docname) + "#" + entry.node_id
        ref = nodes.reference("", "", internal=True, refuri=uri, reftitle=m.group(1))
        literal.replace_self(ref)
        ref.append(literal)


def setup(app):
    app.connect("builder-inited", _generate)
    app.connect("build-finished", _copy_mathjax)
    app.connect("doctree-resolved", _link_literals)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
