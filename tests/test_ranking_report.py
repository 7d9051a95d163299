"""Reading a ranking: rank_table, ranking_notes (degenerate estimators, a ground truth that
cannot separate the models, agreement), and the static baselines."""
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import kendalltau

import transfer_nb as tnb
from transfer_nb.selection import estimator_agreement, rank_table, ranking_notes, top_models
from transfer_nb.selection.baselines import (IMAGENET_TOP1_SOURCE, imagenet_top1,
                                             parameter_count)
from transfer_nb.selection.report import SCORE_MEANINGS, column_meanings


def _table(**cols):
    n = len(next(iter(cols.values())))
    base = {"layer": ["p"] * n, "width": [1280] * n, "n_train": [120] * n,
            "n_classes": [4] * n}
    table = pd.DataFrame({**base, **cols}, index=pd.Index([f"m{i}" for i in range(n)],
                                                          name="model"))
    table["note"] = ""
    return table


def test_rank_table_is_public_sorted_and_keeps_failed_rows_last():
    table = _table(logme=[0.2, 0.5, np.nan, 0.4], logme_seconds=[1.0] * 4)
    ranked = tnb.rank_table(table)
    assert tnb.rank_table is rank_table
    assert list(ranked.index) == ["m1", "m3", "m0", "m2"]
    assert ranked["rank"].tolist()[:3] == [1, 2, 3] and pd.isna(ranked["rank"].iloc[3])
    assert "logme_seconds" not in ranked.columns and "note" not in ranked.columns
    assert ranked.attrs["sort_by"] == "logme" and ranked.attrs["higher_is_better"]
    # a lower-is-better estimator (PGE is a distance) ranks ascending
    dist = rank_table(_table(pge=[3.0, 1.0, 2.0]), by="pge")
    assert list(dist.index) == ["m1", "m2", "m0"] and not dist.attrs["higher_is_better"]
    with pytest.raises(ValueError, match="cannot rank by 'bogus'"):
        rank_table(table, by="bogus")
    with pytest.raises(ValueError, match="not a numeric column"):
        rank_table(table, by="layer")
    # the cli's former export is the same function
    from transfer_nb import cli
    assert cli.rank_table is rank_table


def test_notes_name_the_degenerate_estimators():
    table = _table(transrate=[300.0, 320.0, 310.0], logme=[0.5, 0.7, 0.6],
                   hscore=[3.0, 3.0, 3.0 + 1e-12], nce=[-0.2, -0.2, -0.2])
    notes = ranking_notes(table)
    assert ("hscore is exactly K - 1 = 3 for m0, m1, m2: with n_train <= width every "
            "direction is 'explained', so it cannot rank these models (hscore_shrinkage "
            "can)") in notes
    assert any(n.startswith("logme: n_train <= width for m0, m1, m2") for n in notes)
    assert "nce is the same for every model (-0.2): it cannot rank them" in notes
    assert not any(n.startswith("hscore is the same") for n in notes)  # said once
    # more images than dimensions: no K - 1 or LogME note, a constant column still is one
    wide = ranking_notes(table.assign(n_train=2000))
    assert not any("K - 1" in n or n.startswith("logme:") for n in wide)
    assert "hscore is the same for every model (3): it cannot rank them" in wide


def test_notes_on_a_ground_truth_that_cannot_separate_the_models():
    table = _table(transrate=[1.0, 2.0, 3.0], accuracy=[1.0, 1.0, 1.0], n_test=[40] * 3)
    (line,) = [n for n in ranking_notes(table) if "cannot separate" in n]
    assert line.startswith("the ground truth cannot separate the models (spread 0.000 < 3 SE")
    assert "a model reaches 1.000 >= 0.97" in line
    apart = _table(transrate=[1.0, 2.0, 3.0], accuracy=[0.3, 0.6, 0.9], n_test=[200] * 3)
    notes = ranking_notes(apart)
    assert not any("cannot separate" in n for n in notes)
    assert "transrate puts m2 first; the ground truth (accuracy) puts m2 first" in notes


def test_agreement_is_kendall_tau_between_rankings():
    a, b, c = [1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0], [4.0, 3.0, 2.0, 1.0]
    table = _table(transrate=a, logme=b, leep=c).assign(n_train=5000)
    taus = estimator_agreement(table)
    assert taus.loc["transrate", "logme"] == pytest.approx(kendalltau(a, b).statistic)
    assert taus.loc["transrate", "leep"] == pytest.approx(-1.0)
    assert taus.loc["logme", "transrate"] == taus.loc["transrate", "logme"]
    assert top_models(table) == {"transrate": "m3", "logme": "m2", "leep": "m0"}
    notes = ranking_notes(table)
    assert f"agreement (Kendall tau between the estimators' rankings): transrate~logme " \
           f"{kendalltau(a, b).statistic:+.2f}, transrate~leep -1.00, logme~leep " \
           f"{kendalltau(b, c).statistic:+.2f}" in notes
    assert ("the estimators disagree on the best model: transrate -> m3, logme -> m2, "
            "leep -> m0") in notes
    agree = _table(transrate=a, logme=a).assign(n_train=5000)
    assert "every estimator puts m3 first" in ranking_notes(agree)
    # failed models are left out of the comparison
    failed = agree.copy()
    failed.attrs["failed"] = {"m3": "WeightsUnavailableError: ..."}
    assert "every estimator puts m2 first" in ranking_notes(failed)


def test_every_default_column_has_a_meaning():
    from transfer_nb.selection import DEFAULT_ESTIMATORS, BASELINES
    lines = column_meanings(list(DEFAULT_ESTIMATORS) + ["accuracy"] + list(BASELINES))
    assert len(lines) == len(DEFAULT_ESTIMATORS) + 1 + len(BASELINES)
    assert lines[0] == SCORE_MEANINGS["transrate"]


def test_static_baselines():
    assert imagenet_top1("efficientnet_lite0") == 75.1
    assert imagenet_top1("efficientnet_lite1") == 76.7
    assert imagenet_top1("efficientnet_lite2") == 77.6
    assert "tensorflow/tpu" in IMAGENET_TOP1_SOURCE
    from torchvision.models import get_model_weights
    assert imagenet_top1("resnet50") == \
        get_model_weights("resnet50").DEFAULT.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert np.isnan(imagenet_top1("small_cnn")) and np.isnan(imagenet_top1("timm:resnet18"))
    net = torch.nn.Linear(3, 2)
    assert np.isnan(imagenet_top1(net))
    net.transfer_nb_imagenet_top1 = 50.0
    assert imagenet_top1(net) == 50.0
    shared = torch.nn.Sequential(net, torch.nn.ReLU(), net)  # one tensor used twice
    assert parameter_count(shared) == 8


def test_next_step_follows_what_the_run_showed():
    """issue 37 point 4: one sentence after every ranking, chosen from the run."""
    from transfer_nb.selection import next_step

    five = dict(transrate=[1.0, 2.0, 3.0, 4.0, 5.0], logme=[5.0, 4.0, 3.0, 2.0, 1.0])
    assert next_step(_table(transrate=[1.0, 2.0, 3.0])).startswith(
        "add models: with 3 models no ranking can be checked")
    assert next_step(_table(**five)).startswith("add ground_truth='linear_probe' and "
                                                "evaluate_estimators()")
    at_ceiling = _table(**five, accuracy=[0.98, 0.99, 1.0, 0.99, 0.98], n_test=[50] * 5)
    assert next_step(at_ceiling).startswith("use more held-out images per class or a harder "
                                            "target")
    spread = dict(accuracy=[0.5, 0.6, 0.7, 0.8, 0.9], n_test=[400] * 5, n_train=[2000] * 5)
    assert next_step(_table(**five, **spread)).startswith(
        "the estimators disagree: evaluate_estimators() says which")
    narrow = dict(spread, n_train=[400] * 5)  # n_train <= width: LogME at its limit
    assert next_step(_table(**five, **narrow)).startswith("use more images per class")
    agree = _table(transrate=[1.0, 2.0, 3.0, 4.0, 5.0], **spread)
    assert next_step(agree).startswith("confirm on a second target")


def test_a_score_at_its_bound_puts_no_model_first():
    """issue 37 point 1: score_layers' table with H-score at K - 1 on the wide layers."""
    from transfer_nb.selection.report import degenerate_columns

    layers = pd.DataFrame({"depth": [1, 2, 3, 4, 5], "width": [16, 24, 40, 80, 1280],
                           "transrate": [1.0, 2.0, 3.0, 5.0, 4.0],
                           "hscore": [1.2, 2.1, 2.9, 4.0 + 6e-15, 4.0 - 3e-15]},
                          index=pd.Index([f"blocks.{i}" for i in range(5)], name="layer"))
    layers.attrs.update(n_classes=5, n_train=60)
    assert list(degenerate_columns(layers)) == ["hscore"]
    assert "hscore" not in top_models(layers)
    notes = ranking_notes(layers)
    assert not any("hscore -> " in n for n in notes)
    assert any(n.startswith("hscore is exactly K - 1 = 4 for blocks.3, blocks.4") for n in notes)
    assert "transrate puts blocks.3 first" in notes
