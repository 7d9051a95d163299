"""Transferability estimators: one plain function per method, one file each.

=========================  ==================================================
``transrate(Z, y)``        TransRate, Huang et al. ICML 2022 (coding rate)
``logme(Z, y)``            LogME, You et al. ICML 2021 (evidence maximisation)
``leep(probs, y)``         LEEP, Nguyen et al. ICML 2020
``nce(source_labels, y)``  NCE, Tran et al. ICCV 2019
``hscore(Z, y)``           H-score, Bao et al. ICIP 2019 (+ Ledoit-Wolf shrinkage)
``linear_mse(Z, Y)``       Linear MSE, Nguyen et al. UAI 2023 (regression)
``label_mse(probs, Y)``    Label MSE, Nguyen et al. UAI 2023 (regression)
``pge(model, ...)``        Principal Gradient Expectation, arXiv 2211.16299
``knn(Z, y)``              leave-one-out k-NN accuracy (Bolya et al. 2021: 1-NN)
``nleep(Z, y)``            N-LEEP, Li et al. CVPR 2021 (Gaussian mixture + LEEP)
``gbc(Z, y)``              GBC, Pandy et al. CVPR 2022 (Bhattacharyya overlap)
``parc(Z, y)``             PARC, Bolya et al. NeurIPS 2021
``sfda(Z, y)``             SFDA, Shao et al. ECCV 2022 (self-challenging Fisher space)
=========================  ==================================================

All share the input validation of :mod:`transfer_nb._validation`: numpy or torch
input of any float dtype (promoted to float64), labels of any values, and a
``ValueError`` that says what was wrong and what was expected.  Higher is more
transferable for every score except :func:`pge` and :func:`pge_distance`, which
are distances (lower is more transferable).  Torch is imported only by ``pge``.

:data:`REGISTRY` maps a name to an :class:`~transfer_nb.estimators.registry.Estimator`
(function, inputs, ``higher_is_better``, promised invariances); use :func:`get`,
:func:`list_estimators`, and :func:`register` to add a score.
"""
from transfer_nb.estimators.etran import etran, etran_across_models, etran_terms
from transfer_nb.estimators.gbc import gbc
from transfer_nb.estimators.hscore import hscore
from transfer_nb.estimators.knn import knn
from transfer_nb.estimators.label_mse import label_mse
from transfer_nb.estimators.leep import leep
from transfer_nb.estimators.linear_mse import linear_mse
from transfer_nb.estimators.logme import logme
from transfer_nb.estimators.nce import nce
from transfer_nb.estimators.ncti import ncti, ncti_across_models, ncti_terms
from transfer_nb.estimators.nleep import nleep
from transfer_nb.estimators.parc import parc
from transfer_nb.estimators.pge import pge, pge_distance
from transfer_nb.estimators.registry import REGISTRY, Estimator, get, list_estimators, register
from transfer_nb.estimators.sfda import sfda
from transfer_nb.estimators.transrate import (coding_rate_terms, transrate,
                                              transrate_official, transrate_per_layer)

__all__ = ["transrate", "transrate_official", "transrate_per_layer", "coding_rate_terms",
           "logme", "leep", "nce", "hscore", "linear_mse", "label_mse", "pge", "pge_distance",
           "knn", "nleep", "gbc", "parc", "sfda", "etran", "etran_terms",
           "etran_across_models", "ncti", "ncti_terms", "ncti_across_models",
           "REGISTRY", "Estimator", "get", "list_estimators", "register"]
