"""Registry of transferability estimators: name -> function and what it promises.

Each :class:`Estimator` records the function, the inputs it takes (in call
order), whether higher is better, and the invariances the score promises.  The
test harness (``tests/test_estimator_harness.py``) runs one battery over every
entry, so a new score is covered by adding one :func:`register` call::

    from transfer_nb.estimators.registry import register
    register("label_mse", label_mse, inputs=("features", "labels"),
             invariances=("sample_order", "label_names"),
             reference="...")

Input kinds
-----------
``"features"``            (n, d) real matrix (one row per target example)
``"labels"``              (n,) target class labels of any values
``"source_probs"``        (n, n_source_classes) source-model softmax outputs
``"source_labels"``       (n,) source-task labels of the target examples
``"regression_targets"``  (n,) or (n, m) real targets
``"model"``, ``"loss_fn"``, ``"source_data"``, ``"target_data"``
                          a torch model, a loss and two tasks (PGE)

Invariances
-----------
``"sample_order"``         permuting the examples (rows) together with their labels
``"label_names"``          renaming the target classes (any bijection of the values)
``"source_class_order"``   permuting the source classes (columns of source_probs,
                           or renaming source labels)
``"orthogonal_rotation"``  ``Z -> Z Q`` for an orthogonal ``Q``
``"feature_scale"``        ``Z -> c Z`` for a scalar ``c > 0``
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

from transfer_nb.coding_rate import transrate
from transfer_nb.estimators.etran import etran
from transfer_nb.estimators.gbc import gbc
from transfer_nb.estimators.hscore import hscore
from transfer_nb.estimators.knn import knn
from transfer_nb.estimators.label_mse import label_mse
from transfer_nb.estimators.leep import leep
from transfer_nb.estimators.linear_mse import linear_mse
from transfer_nb.estimators.logme import logme
from transfer_nb.estimators.nce import nce
from transfer_nb.estimators.ncti import ncti
from transfer_nb.estimators.nleep import nleep
from transfer_nb.estimators.parc import parc
from transfer_nb.estimators.pge import pge
from transfer_nb.estimators.sfda import sfda

__all__ = ["Estimator", "REGISTRY", "register", "get", "list_estimators",
           "INPUT_KINDS", "INVARIANCES"]

INPUT_KINDS = ("features", "labels", "source_probs", "source_labels", "regression_targets",
               "model", "loss_fn", "source_data", "target_data")
INVARIANCES = ("sample_order", "label_names", "source_class_order", "orthogonal_rotation",
               "feature_scale")


@dataclass(frozen=True)
class Estimator:
    """One registered transferability score.

    Attributes
    ----------
    name : str
        Registry key.
    func : callable
        The score; called with the inputs in the order of ``inputs``.
    inputs : tuple of str
        Input kinds, in call order (see the module docstring).
    higher_is_better : bool
        False for distances such as PGE.
    invariances : frozenset of str
        Transformations of the inputs that leave the score unchanged.
    reference : str
        Paper the score comes from.
    """

    name: str
    func: Callable
    inputs: tuple[str, ...]
    higher_is_better: bool = True
    invariances: frozenset = field(default_factory=frozenset)
    reference: str = ""

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)


REGISTRY: dict[str, Estimator] = {}


def register(name: str, func: Callable, inputs, *, higher_is_better: bool = True,
             invariances=(), reference: str = "", replace: bool = False) -> Estimator:
    """Add an estimator to :data:`REGISTRY` and return its entry.

    Parameters
    ----------
    name : str
        Registry key (unique unless ``replace=True``).
    func : callable
        The score, called as ``func(*inputs)``.
    inputs : sequence of str
        Input kinds in call order, from :data:`INPUT_KINDS`.
    higher_is_better : bool, default True
    invariances : sequence of str
        Promised invariances, from :data:`INVARIANCES`.
    reference : str
        Paper (free text).
    replace : bool, default False
        Allow overwriting an existing entry.

    Raises
    ------
    ValueError
        On a duplicate name, an unknown input kind or an unknown invariance.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}.")
    if name in REGISTRY and not replace:
        raise ValueError(f"estimator {name!r} is already registered; pass replace=True "
                         "to overwrite it.")
    if not callable(func):
        raise ValueError(f"func must be callable; got {type(func).__name__}.")
    inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
    bad = [k for k in inputs if k not in INPUT_KINDS]
    if not inputs or bad:
        raise ValueError(f"unknown input kind(s) {bad} for {name!r}; expected some of "
                         f"{list(INPUT_KINDS)}.")
    invariances = (invariances,) if isinstance(invariances, str) else tuple(invariances)
    bad = [k for k in invariances if k not in INVARIANCES]
    if bad:
        raise ValueError(f"unknown invariance(s) {bad} for {name!r}; expected some of "
                         f"{list(INVARIANCES)}.")
    entry = Estimator(name=name, func=func, inputs=inputs,
                      higher_is_better=bool(higher_is_better),
                      invariances=frozenset(invariances), reference=str(reference))
    REGISTRY[name] = entry
    return entry


def get(name: str) -> Estimator:
    """The registered :class:`Estimator` called ``name`` (ValueError listing the names)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown estimator {name!r}; expected one of {list(REGISTRY)}.")
    return REGISTRY[name]


def list_estimators(inputs=None) -> list[str]:
    """Registered names, in registration order.

    Parameters
    ----------
    inputs : str, optional
        Keep only estimators that take this input kind (e.g. ``"features"``).
    """
    if inputs is not None and inputs not in INPUT_KINDS:
        raise ValueError(f"unknown input kind {inputs!r}; expected one of {list(INPUT_KINDS)}.")
    return [n for n, e in REGISTRY.items() if inputs is None or inputs in e.inputs]


_CLS = ("features", "labels")
_FEATURE_INV = ("sample_order", "label_names", "orthogonal_rotation")

register("transrate", transrate, _CLS, invariances=_FEATURE_INV,
         reference="Huang et al., ICML 2022 (paper snippet)")
register("transrate_layerwise", functools.partial(transrate, variant="layerwise"), _CLS,
         invariances=_FEATURE_INV + ("feature_scale",),
         reference="Huang et al., ICML 2022 (authors' layer-selection code)")
register("transrate_projected", functools.partial(transrate, variant="projected"), _CLS,
         invariances=_FEATURE_INV,
         reference="Huang et al., ICML 2022 (authors' model-selection code, use_Z_proj)")
register("logme", logme, _CLS, invariances=_FEATURE_INV + ("feature_scale",),
         reference="You et al., ICML 2021")
register("leep", leep, ("source_probs", "labels"),
         invariances=("sample_order", "label_names", "source_class_order"),
         reference="Nguyen et al., ICML 2020")
register("nce", nce, ("source_labels", "labels"),
         invariances=("sample_order", "label_names", "source_class_order"),
         reference="Tran et al., ICCV 2019")
register("hscore", hscore, _CLS, invariances=_FEATURE_INV + ("feature_scale",),
         reference="Bao et al., ICIP 2019")
register("hscore_shrinkage", functools.partial(hscore, shrinkage=True), _CLS,
         invariances=_FEATURE_INV + ("feature_scale",),
         reference="Ibrahim et al., ICLR 2023 (Ledoit-Wolf H-score)")
register("knn", knn, _CLS, invariances=_FEATURE_INV + ("feature_scale",),
         reference="leave-one-out 1-NN accuracy: Bolya et al., NeurIPS 2021 ('1-NN CV'); "
                   "Sorkhei et al., 2025")
register("nleep", nleep, _CLS, invariances=_FEATURE_INV + ("feature_scale",),
         reference="Li et al., CVPR 2021 (Ranking Neural Checkpoints)")
register("gbc", gbc, _CLS, invariances=_FEATURE_INV,
         reference="Pandy et al., CVPR 2022")
register("parc", parc, _CLS, invariances=_FEATURE_INV + ("feature_scale",),
         reference="Bolya et al., NeurIPS 2021")
register("sfda", sfda, _CLS, invariances=_FEATURE_INV,
         reference="Shao et al., ECCV 2022")
register("etran", etran, _CLS, invariances=("sample_order", "label_names"),
         reference="Gholami et al., ICCV 2023 (energy on the features, as the authors' code)")
register("ncti", ncti, _CLS, invariances=_FEATURE_INV,
         reference="Wang et al., ICCV 2023 (un-normalised sum of the three terms)")
register("linear_mse", linear_mse, ("features", "regression_targets"),
         invariances=("sample_order", "orthogonal_rotation"),
         reference="Nguyen et al., UAI 2023")
register("label_mse", label_mse, ("source_probs", "regression_targets"),
         invariances=("sample_order", "source_class_order"),
         reference="Nguyen et al., UAI 2023 (Label MSE)")
register("pge", pge, ("model", "loss_fn", "source_data", "target_data"),
         higher_is_better=False, invariances=(),
         reference="Qi et al., arXiv 2211.16299")
