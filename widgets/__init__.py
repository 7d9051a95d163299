"""Jupyter widgets for transfer-nb, built on core ipywidgets 8 and matplotlib.

Each widget is an ``ipywidgets.VBox`` that wires controls to functions of
:mod:`transfer_nb` (no computation of its own) and exposes what it computed as plain
attributes, so that code and tests can read the state without a browser:

* :class:`FeatureExplorer` -- dataset + model + layers -> ``.features``, ``.labels``;
* :class:`CodingRateExplorer` -- ``.terms`` and ``.transrate`` on toy or real data;
* :class:`LayerSelector` -- ``.scores`` per layer, ``.correlation``, ``.value``;
* :class:`TransferabilityStepper` -- the three above as a guided sequence.

Errors are shown inside the widget (an ``HTML`` with CSS class ``tnb-error``) and
never leave it unusable.
"""
from .adversarial_explorer import AdversarialExplorer
from .coding_rate_explorer import CodingRateExplorer
from .feature_explorer import FeatureExplorer
from .head2toe_explorer import Head2ToeExplorer
from .layer_selector import LayerSelector
from .pge_explorer import PGEExplorer
from .regression_explorer import LambdaExplorer
from .stepper import TransferabilityStepper

__all__ = ["FeatureExplorer", "CodingRateExplorer", "LayerSelector",
           "TransferabilityStepper", "PGEExplorer", "LambdaExplorer", "Head2ToeExplorer",
           "AdversarialExplorer"]
