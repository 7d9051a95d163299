"""Pieces shared by the widgets: figure output, error display, small HTML tables.

Figures are rendered to PNG and appended to an ``ipywidgets.Output`` as display data
(``Output.append_display_data``) instead of being drawn inside ``with output:``.
Why: that path does not need a running kernel (widget tests run headless), the PNG
lives in the widget state (so nbconvert / static HTML exports keep it), and no
matplotlib backend (inline, ipympl) has to be active.
"""
from __future__ import annotations

import html
import io
import traceback

import ipywidgets as W
import numpy as np

ERROR_CLASS = "tnb-error"


def show_figure(output: W.Output, fig) -> None:
    """Replace what ``output`` shows with the figure ``fig`` (made by :func:`new_figure`)."""
    from IPython.display import Image

    buf = io.BytesIO()
    # No bbox_inches="tight": it draws the figure twice; the constrained layout of
    # new_figure already keeps the labels inside.
    fig.savefig(buf, format="png", dpi=80)
    output.outputs = ()
    output.append_display_data(Image(data=buf.getvalue(), format="png"))


def new_figure(ncols: int = 1, width: float = 4.2, height: float = 3.2):
    """A figure with ``ncols`` axes side by side.

    Built from ``matplotlib.figure.Figure`` rather than pyplot on purpose: pyplot would
    register it with the active backend, and the inline backend would then display it
    a second time at the end of the cell.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def error_message(exc: BaseException) -> str:
    """One readable line for an exception: its type and message, no traceback."""
    text = str(exc).strip() or exc.__class__.__name__
    if isinstance(exc, KeyError) and text.startswith("'") and text.endswith("'"):
        text = text[1:-1]
    return f"{exc.__class__.__name__}: {text}"


class ErrorArea(W.VBox):
    """A box that shows at most one error, as an ``HTML`` with CSS class ``tnb-error``.

    Attributes
    ----------
    message : str or None
        The error text currently shown (``None`` when there is none).
    details : str or None
        The traceback of the last exception, kept for debugging but not shown.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.message = None
        self.details = None

    def show(self, error) -> None:
        """Show ``error`` (an exception or a string)."""
        if isinstance(error, BaseException):
            self.details = "".join(traceback.format_exception(type(error), error,
                                                              error.__traceback__))
            error = error_message(error)
        self.message = str(error)
        label = W.HTML(value=f'<span style="color:#b00020"><b>Error.</b> '
                             f"{html.escape(self.message)}</span>")
        label.add_class(ERROR_CLASS)
        self.children = (label,)

    def clear(self) -> None:
        """Remove the error, if any."""
        self.message = None
        self.children = ()


def fmt(value, digits: int = 3) -> str:
    """Format a float for display (``nan`` as an en dash)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "&ndash;"
    return f"{float(value):.{digits}f}"


def html_table(header, rows, css_class: str = "tnb-table") -> str:
    """A small HTML table; cells are inserted as given (callers escape text)."""
    style = "border-collapse:collapse"
    cell = "padding:2px 10px;border-bottom:1px solid #ddd;text-align:right"
    head = "".join(f'<th style="{cell}">{h}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{cell}">{c}</td>' for c in row) + "</tr>"
                   for row in rows)
    return (f'<table class="{css_class}" style="{style}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")
