"""TransferabilityStepper: extract -> coding rate -> layer selection, one step at a time."""
from __future__ import annotations

import html

import ipywidgets as W

from .coding_rate_explorer import CodingRateExplorer
from .feature_explorer import FeatureExplorer
from .layer_selector import LayerSelector

__all__ = ["TransferabilityStepper"]

STEPS = {
    1: ("Step 1 of 3: extract features",
        "Choose a target dataset and a pretrained model, select layers and press "
        "<b>Extract</b>. Every image becomes one feature vector per layer. Then "
        "press <b>Next</b>."),
    2: ("Step 2 of 3: the coding rate",
        "TransRate = R(Z) &minus; R(Z|Y) compares how many nats the features of all "
        "classes need with what each class needs alone. Pick a layer, move &epsilon; "
        "and watch the terms; switch to the toy Gaussians to build intuition."),
    3: ("Step 3 of 3: choose a layer",
        "TransRate of every layer from step 1. Press <b>Measure linear-probe "
        "accuracy</b> to check the ranking against the accuracy a linear classifier "
        "actually reaches, and pick the layer to transfer."),
}


class TransferabilityStepper(W.VBox):
    """A guided tour: each step reuses the previous step's result.

    Step 1 is a :class:`FeatureExplorer`, step 2 a :class:`CodingRateExplorer` on the
    extracted features, step 3 a :class:`LayerSelector` on the same features, with the
    ``eps`` chosen in step 2.  A step
    can only be opened once its prerequisite ran: step 2 needs a successful extraction,
    step 3 needs step 2 to have computed the coding-rate terms on the *current*
    features (re-extracting in step 1 makes step 2 due again).  A refused move shows a
    message (CSS classes ``tnb-error`` and ``tnb-stepper-message``) and changes nothing.

    Parameters
    ----------
    datasets, models, n, image_size, layers :
        Passed to :class:`FeatureExplorer`.
    eps : float
        Initial distortion for steps 2 and 3.

    Attributes
    ----------
    step : int
        The step shown (1, 2 or 3).
    message : str or None
        The text of the last refusal (``None`` after a successful move).
    explorer, coding, selector :
        The three step widgets.
    """

    def __init__(self, datasets=None, models=None, n: int = 200, image_size: int = 64,
                 layers=None, eps: float = 1e-4):
        self.explorer = FeatureExplorer(datasets=datasets, models=models, n=n,
                                        image_size=image_size, layers=layers)
        self.coding = CodingRateExplorer(eps=eps)
        self.selector = LayerSelector(eps=eps)
        self.step = 1
        self.message = None
        # Which features steps 2 and 3 were last computed on (identity, not equality:
        # a new extraction is a new dict even when its numbers happen to coincide).
        self._coding_features = None
        self._selector_features = None

        self.title = W.HTML()
        self.explanation = W.HTML()
        self.message_html = W.HTML()
        self.message_html.add_class("tnb-stepper-message")
        self.back_button = W.Button(description="Back", icon="arrow-left")
        self.next_button = W.Button(description="Next", icon="arrow-right",
                                    button_style="info")
        self.back_button.on_click(lambda button: self.back())
        self.next_button.on_click(lambda button: self.next())
        self.body = W.Box()
        super().__init__([self.title, self.explanation,
                          W.HBox([self.back_button, self.next_button]),
                          self.message_html, self.body])
        self.add_class("tnb-stepper")
        self._show()

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
        if step >= 3 and not self.step_done[2]:
            return ("Step 3 needs step 2 on the current features: open step 2 first "
                    "(press Next from step 1).")
        return None

    def go_to(self, step: int) -> bool:
        """Open ``step`` if its prerequisite ran.

        Returns
        -------
        bool
            True if the step is now shown; False if refused (a message is shown and
            nothing else changes).
        """
        reason = self._missing(step)
        if reason is not None:
            self._refuse(reason)
            return False
        if step == 2 and self._coding_features is not self.explorer.features:
            if not self.coding.set_features(self.explorer.features, self.explorer.labels):
                # the explorer shows why; stay where we are
                self._refuse("The coding-rate terms could not be computed on these "
                             "features (see the error in step 2's panel).")
                return False
            self._coding_features = self.explorer.features
        if step == 3 and self.selector.eps.value != self.coding.eps.value:
            # step 3 scores the layers with the distortion chosen in step 2
            self.selector.eps.value = self.coding.eps.value
        if step == 3 and self._selector_features is not self.explorer.features:
            if not self.selector.set_features(self.explorer.features, self.explorer.labels):
                self._refuse("TransRate per layer could not be computed on these "
                             "features: " + str(self.selector.errors.message))
                return False
            self._selector_features = self.explorer.features
        self.step = step
        self.message = None
        self.message_html.value = ""
        self.message_html.remove_class("tnb-error")
        self._show()
        return True

    def next(self) -> bool:
        """Go one step forward (refused at the last step or without the prerequisite)."""
        if self.step >= 3:
            self._refuse("This is the last step.")
            return False
        return self.go_to(self.step + 1)

    def back(self) -> bool:
        """Go one step back (always allowed, except from step 1)."""
        if self.step <= 1:
            self._refuse("This is the first step.")
            return False
        return self.go_to(self.step - 1)

    # ------------------------------------------------------------------ display
    def _refuse(self, reason: str) -> None:
        self.message = reason
        self.message_html.value = (f'<span style="color:#b00020">'
                                   f"{html.escape(reason)}</span>")
        self.message_html.add_class("tnb-error")

    def _show(self) -> None:
        title, text = STEPS[self.step]
        self.title.value = f"<h3>{title}</h3>"
        self.explanation.value = f"<p>{text}</p>"
        self.body.children = ({1: self.explorer, 2: self.coding, 3: self.selector}[self.step],)
        self.back_button.disabled = self.step == 1
        self.next_button.disabled = self.step == 3
