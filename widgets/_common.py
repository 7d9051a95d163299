"""Pieces shared by the widgets: figure output, error display, small HTML tables, layout.

Figures are rendered to PNG and appended to an ``ipywidgets.Output`` as display data
(``Output.append_display_data``) instead of being drawn inside ``with output:``.
Why: that path does not need a running kernel (widget tests run headless), the PNG
lives in the widget state (so nbconvert / static HTML exports keep it), and no
matplotlib backend (inline, ipympl) has to be active.  Figures come from
:func:`transfer_nb.plots.new_figure`, the style the ``%transrate`` magic shares.

Layout: :func:`columns` puts the controls on the left and the results on the right
(:data:`CONTROLS_WIDTH`); :func:`about` folds an explanation into a closed "About"
accordion.
"""
from __future__ import annotations

import html
import io
import time
import traceback

import ipywidgets as W
import numpy as np

from transfer_nb import plots

ERROR_CLASS = "tnb-error"
WARNING_CLASS = "tnb-warning"
#: Width of the left (controls) column; the results take the rest of the row.
CONTROLS_WIDTH = "330px"
#: Clicks on the same button that arrive this soon (seconds) after its previous action
#: ended are ignored: a double click queues a second click behind the first one.
REPEAT_WINDOW_S = 0.4


def show_figure(output: W.Output, fig) -> None:
    """Replace what ``output`` shows with the figure ``fig`` (made by :func:`new_figure`)."""
    from IPython.display import Image

    buf = io.BytesIO()
    # No bbox_inches="tight": it draws the figure twice; the constrained layout of
    # new_figure already keeps the labels inside.
    fig.savefig(buf, format="png", dpi=plots.FIGURE_DPI)
    output.outputs = ()
    output.append_display_data(Image(data=buf.getvalue(), format="png"))


def new_figure(ncols: int = 1, width: float = 4.2, height: float = 3.2, **kwargs):
    """A figure with ``ncols`` axes side by side (:func:`transfer_nb.plots.new_figure`).

    A bare ``matplotlib.figure.Figure``, not pyplot: the inline backend would otherwise
    display it a second time at the end of the cell.  ``width`` is per axis.
    """
    return plots.new_figure(ncols=ncols, width=width, height=height, **kwargs)


def about(text: str, title: str = "About") -> W.Accordion:
    """A closed accordion titled ``title`` holding the HTML ``text``."""
    box = W.Accordion(children=[W.HTML(text, layout=W.Layout(max_width="900px"))],
                      selected_index=None)
    box.set_title(0, title)
    box.add_class("tnb-about")
    return box


def columns(controls, results) -> W.HBox:
    """Controls on the left (fixed width), results on the right (the rest)."""
    left = W.VBox(list(controls), layout=W.Layout(width=CONTROLS_WIDTH, flex="0 0 auto",
                                                   margin="0 12px 0 0"))
    right = W.VBox(list(results), layout=W.Layout(flex="1 1 auto", min_width="0"))
    left.add_class("tnb-controls")
    right.add_class("tnb-results")
    return W.HBox([left, right], layout=W.Layout(align_items="flex-start", width="100%"))


def prose(text: str) -> str:
    """``text`` (HTML) with a compact line height (widget labels default to 28 px lines)."""
    return f'<div style="line-height:1.4">{text}</div>'


def plain(values) -> list:
    """Numpy scalars in ``values`` as plain Python values (``[1, 3]``, not ``np.int64``)."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


class RepeatGuard:
    """Ignore a button's click while its action runs or right after it ended.

    ``guard(action)`` returns a click handler.  A click is ignored (and counted in
    ``ignored``) while ``busy`` is set, or when it arrives less than ``window`` seconds
    after the previous action of the same handler ended: in a kernel, the second click
    of a double click waits in the queue and would otherwise run the action again.
    """

    def __init__(self, window: float = REPEAT_WINDOW_S):
        self.window = window
        self.busy = False
        self.ignored = 0
        self._ended: dict = {}

    def __call__(self, action, key=None):
        key = action if key is None else key

        def handler(button=None):
            now = time.monotonic()
            if self.busy or now - self._ended.get(key, -np.inf) < self.window:
                self.ignored += 1
                return None
            self.busy = True
            try:
                return action()
            finally:
                self.busy = False
                self._ended[key] = time.monotonic()
        return handler


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
    """Format a float for display (``nan`` as an en dash; never ``-0.000``)."""
    if value is None or not np.isfinite(float(value)):
        return "&ndash;"
    text = f"{float(value):.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text


class NoteArea(W.HTML):
    """Warnings in plain words (CSS class ``tnb-warning``); ``notes`` lists their texts."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.notes: list = []

    def show(self, notes) -> None:
        """Show the strings ``notes`` (HTML allowed); an empty list hides the area."""
        self.notes = list(notes)
        if not self.notes:
            self.value = ""
            self.remove_class(WARNING_CLASS)
            return
        items = "".join(f"<li>{note}</li>" for note in self.notes)
        self.value = (f'<div style="color:#7a4a00;background:#fff4e0;padding:2px 8px;'
                      f'line-height:1.4;border-left:3px solid #e69500">'
                      f'<ul style="margin:2px 0;padding-left:16px">{items}</ul></div>')
        self.add_class(WARNING_CLASS)

    def clear(self) -> None:
        self.show([])


def html_table(header, rows, css_class: str = "tnb-table") -> str:
    """A small HTML table; cells are inserted as given (callers escape text)."""
    style = "border-collapse:collapse;line-height:1.3;font-size:0.95em"
    cell = ("padding:1px 5px;border-bottom:1px solid #ddd;text-align:right;"
            "white-space:nowrap")
    head = "".join(f'<th style="{cell}">{h}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{cell}">{c}</td>' for c in row) + "</tr>"
                   for row in rows)
    return (f'<table class="{css_class}" style="{style}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")
