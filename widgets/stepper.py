"""TransferabilityStepper: extract -> coding rate -> layer selection, one step at a time."""
from __future__ import annotations

import html

import ipywidgets as W
import traitlets

from . import coding_rate_explorer, feature_explorer, layer_selector
from ._common import ERROR_CLASS, RepeatGuard, about as about_box
from .coding_rate_explorer import CodingRateExplorer
from .feature_explorer import FeatureExplorer
from .layer_selector import LayerSelector

__all__ = ["TransferabilityStepper"]

# (title, what to do now: always visible, one or two lines)
STEPS = {
    1: ("Step 1 of 3: extract features",
        "Choose a target dataset and a pretrained model, select layers and press "
        "<b>Extract</b>, then <b>Next</b>."),
    2: ("Step 2 of 3: the coding rate",
        "Pick a layer, move &epsilon; and watch the terms of TransRate = R(Z) &minus; "
        "R(Z|Y); switch to the toy Gaussians to build intuition. Then <b>Next</b>."),
    3: ("Step 3 of 3: choose a layer",
        "TransRate of every layer from step 1 (with step 2's &epsilon;). Press "
        "<b>Measure linear-probe accuracy</b> to check the ranking, and pick the layer "
        "to transfer."),
}
# The one explanation of each step (the inner widgets' own "About" is left out).
ABOUT = {1: feature_explorer.EXPLANATION, 2: coding_rate_explorer.EXPLANATION,
         3: layer_selector.EXPLANATION}


class TransferabilityStepper(W.VBox):
    """A guided tour: each step reuses the previous step's result.

    Step 1 is a :class:`FeatureExplorer`, step 2 a :class:`CodingRateExplorer` on the
    extracted features, step 3 a :class:`LayerSelector` on the same features.  ``eps``
    is linked both ways between steps 2 and 3.  A step can only be opened once its
    prerequisite ran: step 2 needs a successful extraction of scorable data (every class
    with at least 2 samples), step 3 needs step 2 to have computed the coding-rate
    terms on the *current* features (re-extracting in step 1 makes step 2 due again).
    A refused move shows why, in the stepper (CSS classes ``tnb-error`` and
    ``tnb-stepper-message``), and changes nothing; the message goes away as soon as
    its cause is gone (e.g. after a successful extraction) or a move succeeds.

    Back / Next sit above and below the step.  Clicks that arrive while a move runs,
    or right after one (a double click), are ignored.

    Parameters
    ----------
    datasets, models, n, image_size, layers :
        Passed to :class:`FeatureExplorer`.
    eps : float
        Initial distortion for steps 2 and 3.

    Attributes
    ----------
    step : int (traitlet)
        The step shown (1, 2 or 3).
    message : str or None (traitlet)
        The refusal shown (``None`` when there is none).
    busy : bool (traitlet)
        True while a move (and the computation it triggers) runs.
    explorer, coding, selector :
        The three step widgets.
    """

    step = traitlets.Int(1)
    message = traitlets.Unicode(None, allow_none=True)
    busy = traitlets.Bool(False)

    def __init__(self, datasets=None, models=None, n: int = 200, image_size: int = 64,
                 layers=None, eps: float = 1e-4):
        self.explorer = FeatureExplorer(datasets=datasets, models=models, n=n,
                                        image_size=image_size, layers=layers, about="")
        self.coding = CodingRateExplorer(eps=eps, about="")
        self.selector = LayerSelector(eps=eps, about="")
        # one eps for steps 2 and 3, whichever of the two sliders moves
        self._eps_link = traitlets.link((self.coding.eps, "value"),
                                        (self.selector.eps, "value"))
        self._refused_step = None
        # Which features steps 2 and 3 were last computed on (identity, not equality:
        # a new extraction is a new dict even when its numbers happen to coincide).
        self._coding_features = None
        self._selector_features = None
        self._guard = RepeatGuard()

        self.title = W.HTML()
        self.explanation = W.HTML()
        self.about = about_box("")
        self.message_html = W.HTML()
        self.message_html.add_class("tnb-stepper-message")
        self.back_button, self.next_button = self._nav_buttons()
        self.back_bottom, self.next_bottom = self._nav_buttons()
        self.body = W.Box(layout=W.Layout(width="100%"))
        top = W.HBox([self.back_button, self.next_button, self.title],
                      layout=W.Layout(align_items="center"))
        bottom = W.HBox([self.back_bottom, self.next_bottom],
                        layout=W.Layout(margin="8px 0 0 0"))
        bottom.add_class("tnb-stepper-bottom")
        super().__init__([top, self.explanation, self.about, self.message_html, self.body,
                          bottom])
        self.add_class("tnb-stepper")
        self.explorer.observe(self._on_features, names="features")
        self._show()

    def _nav_buttons(self):
        back = W.Button(description="Back", icon="arrow-left",
                        layout=W.Layout(width="90px"))
        nxt = W.Button(description="Next", icon="arrow-right", button_style="info",
                       layout=W.Layout(width="90px"))
        # one guard per direction: a double click on either copy runs one move
        back.on_click(self._guard(self.back, key="back"))
        nxt.on_click(self._guard(self.next, key="next"))
        return back, nxt

    # ------------------------------------------------------------------ navigation
    @property
    def step_done(self) -> dict:
        """``{1: bool, 2: bool, 3: bool}``: which steps have a result for the current data."""
        features = self.explorer.features
        return {1: features is not None,
                2: features is not None and self._coding_features is features
                and bool(self.coding.terms),
                3: features is not None and self._selector_features is features
                and self.selector.scores is not None}

    def _missing(self, step: int) -> str | None:
        """Why ``step`` cannot be opened now (``None`` if it can)."""
        if step not in STEPS:
            return f"there is no step {step}; steps are 1, 2 and 3"
        if step >= 2 and self.explorer.features is None:
            return (f"Step {step} needs features: run step 1 first (choose a dataset, a "
                    "model and layers, then press Extract).")
        summary = self.explorer.features_summary
        if step >= 2 and not summary.get("scorable", True):
            return (f"Step {step} cannot score these features: "
                    + " ".join(summary["problems"]))
        if step >= 3 and not self.step_done[2]:
            return ("Step 3 needs step 2 on the current features: open step 2 first "
                    "(press Next from step 1).")
        return None

    def go_to(self, step: int) -> bool:
        """Open ``step`` if its prerequisite ran (ignored while another move runs).

        Returns
        -------
        bool
            True if the step is now shown; False if refused (a message is shown and
            nothing else changes) or ignored.
        """
        if self.busy or self.explorer.busy or self.selector.busy:
            return False
        self.busy = True
        try:
            return self._go_to(step)
        finally:
            self.busy = False

    def _go_to(self, step: int) -> bool:
        reason = self._missing(step)
        if reason is not None:
            self._refuse(reason, step)
            return False
        features, labels = self.explorer.features, self.explorer.labels
        if step == 2 and self._coding_features is not features:
            if not self.coding.set_features(features, labels,
                                            class_names=self.explorer.class_names):
                # say why here, where the learner is: step 2's panel is not shown
                self._refuse("Step 2 could not compute the coding rate on these features: "
                             f"{self.coding.errors.message}", step)
                return False
            self._coding_features = features
        if step == 3 and self._selector_features is not features:
            if not self.selector.set_features(features, labels):
                self._refuse("Step 3 could not compute TransRate per layer on these "
                             f"features: {self.selector.errors.message}", step)
                return False
            self._selector_features = features
        self.step = step
        self._clear_message()
        self._show()
        return True

    def next(self) -> bool:
        """Go one step forward (refused at the last step or without the prerequisite)."""
        if self.step >= 3:
            self._refuse("This is the last step.", None)
            return False
        return self.go_to(self.step + 1)

    def back(self) -> bool:
        """Go one step back (always allowed, except from step 1)."""
        if self.step <= 1:
            self._refuse("This is the first step.", None)
            return False
        return self.go_to(self.step - 1)

    # ------------------------------------------------------------------ display
    def _on_features(self, change) -> None:
        """A new extraction: drop a refusal whose cause it removed."""
        if self.message is not None and (self._refused_step is None
                                         or self._missing(self._refused_step) is None):
            self._clear_message()

    def _refuse(self, reason: str, step) -> None:
        self.message = reason
        self._refused_step = step
        self.message_html.value = (f'<div style="color:#b00020;font-weight:600;'
                                   f'margin:4px 0">{html.escape(reason)}</div>')
        self.message_html.add_class(ERROR_CLASS)

    def _clear_message(self) -> None:
        self.message = None
        self._refused_step = None
        self.message_html.value = ""
        self.message_html.remove_class(ERROR_CLASS)

    def _show(self) -> None:
        title, text = STEPS[self.step]
        self.title.value = f"<h3 style='margin:0 0 0 12px'>{title}</h3>"
        self.explanation.value = f"<p style='margin:4px 0;line-height:1.4'>{text}</p>"
        self.about.children[0].value = ABOUT[self.step]
        self.about.selected_index = None
        self.body.children = ({1: self.explorer, 2: self.coding, 3: self.selector}[self.step],)
        for button in (self.back_button, self.back_bottom):
            button.disabled = self.step == 1
        for button in (self.next_button, self.next_bottom):
            button.disabled = self.step == 3
