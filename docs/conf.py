"""Sphinx configuration of the transfer-nb site (``make docs`` -> build/docs/).

Tooling: Sphinx + MyST-NB with ``nb_execution_mode = "off"``: the tutorials are rendered
from the outputs committed in ``notebooks/`` (executing them is CI's job), the API pages
come from the docstrings through autodoc/autosummary (+ napoleon for the NumPy style),
and everything is generated from the repository at build time by ``_ext/tnb_docs.py``.
Offline: MathJax 3 is copied from a PyPI wheel, no intersphinx, the furo theme (system
fonts, no CDN), and the notebooks' saved widget state is dropped (MyST-NB would load
the widget manager from a CDN); widgets are shown as still images instead.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # this checkout's transfer_nb, before any install

import transfer_nb  # noqa: E402

project = "transfer-nb"
author = "the transfer-nb authors"
copyright = "the transfer-nb authors, Apache-2.0"
release = version = transfer_nb.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "tnb_docs",
]

root_doc = "index"
exclude_patterns = ["INTERFACES.md", "PYPI.md", "_build", "**/.ipynb_checkpoints",
                    "_static/**"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# --- notebooks (MyST-NB) -----------------------------------------------------------
nb_execution_mode = "off"          # never execute: render the committed outputs
nb_ipywidgets_js = {}              # no widget manager from a CDN (stills instead)
nb_render_markdown_format = "myst"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# --- API (autodoc) -------------------------------------------------------------------
autosummary_generate = False       # pages are written by _ext/tnb_api.py
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True        # "Attributes" sections as fields: no duplicate attribute entries
add_module_names = False

# --- HTML, offline ---------------------------------------------------------------------
html_theme = "furo"
html_title = f"transfer-nb {release}"
html_static_path = ["_static"]
html_css_files = ["tnb.css"]
html_show_sourcelink = False
html_copy_source = False
# MathJax 3 from the django-static-mathjax wheel, copied into _static/mathjax by tnb_docs.
mathjax_path = "mathjax/tex-mml-chtml.js"
