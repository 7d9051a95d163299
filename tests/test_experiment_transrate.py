"""The TransRate experiment end to end on a tiny configuration (well under a minute)."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from transfer_nb.experiments import transrate as E



def _tiny_ms():
    return E.ModelSelectionConfig(
        targets=(E.TargetSpec("digits", "digits"),),
        pretrained=("efficientnet_lite0",),
        sources=(E.SourceSpec("cnn-glyphs-1ep", "small_cnn", "glyphs", epochs=1, n=120, width=8),
                 E.SourceSpec("cnn-shapes-1ep", "small_cnn", "shapes", epochs=1, n=120, width=8),
                 E.SourceSpec("resnet-glyphs-1ep", "small_resnet", "glyphs", epochs=1, n=120,
                              width=8)),
        image_size=32, source_image_size=16, n_train=50, n_test=50, epochs=1, batch_size=25)


def _tiny_ls(protocol):
    if protocol == "linear_probe":
        layers, n = ("blocks.1", "blocks.3", "blocks.5", "penultimate"), 60
    else:  # one fine-tuning per layer: keep it tiny
        layers, n = ("blocks.3", "blocks.5", "penultimate"), 30
    return E.LayerSelectionConfig(
        model="efficientnet_lite0", target=E.TargetSpec("digits", "digits"), image_size=32,
        n_train=n, n_test=n, protocol=protocol, layers=layers, epochs=1, batch_size=30)


def test_presets_and_describe():
    fast, full = E.config(fast=True), E.config(fast=False)
    assert fast.mode == "fast" and full.mode == "full"
    for cfg in (fast, full):
        ms = cfg.model_selection
        assert len(ms.pretrained) + len(ms.sources) >= 8
        assert len(ms.targets) >= 3
        assert "efficientnet_lite0" in ms.pretrained
    assert fast.model_selection.image_size < full.model_selection.image_size
    assert fast.model_selection.n_train < full.model_selection.n_train
    text = E.describe(fast)
    assert "mode: fast" in text and "textures" in text


def test_config_follows_fast_mode(monkeypatch):
    monkeypatch.setenv("TRANSFER_NB_FAST", "1")
    assert E.config().mode == "fast"
    monkeypatch.setenv("TRANSFER_NB_FAST", "0")
    assert E.config().mode == "full"


def test_model_selection_end_to_end_and_cache():
    ms = _tiny_ms()
    df = E.model_selection(ms, progress=False)
    for col in ["target", "model", "kind", "transrate", "logme", "leep", "nce", "hscore",
                "accuracy", "time_transrate", "time_logme", "time_leep", "time_nce",
                "time_hscore", "time_features", "time_finetune"]:
        assert col in df.columns, col
    assert len(df) == 4
    assert df[["transrate", "logme", "leep", "nce", "hscore", "accuracy"]].notna().all().all()
    assert ((df["accuracy"] >= 0) & (df["accuracy"] <= 1)).all()
    assert (df.filter(like="time_") >= 0).all().all()

    corr = E.correlations(df)
    assert set(corr["estimator"]) >= set(E.ESTIMATORS)
    vals = corr[["pearson", "kendall", "weighted_tau"]].to_numpy()
    assert np.isfinite(vals).all()
    assert (np.abs(vals) <= 1.0 + 1e-12).all()
    table = E.correlation_table(corr)
    assert list(table.index) == ["digits", "mean"]

    # second run comes from the cache and is identical
    df2 = E.model_selection(ms, progress=False)
    pd.testing.assert_frame_equal(df, df2)

    fig = E.plot_model_selection(df)
    assert len(fig.axes) == 1
    E.plot_correlations(corr)
    E.plot_timings(df)
    pvm = E.paper_vs_measured(df, corr, None)
    assert list(pvm.columns[:4]) == ["claim", "paper says", "this run measured", "reproduced"]
    assert set(pvm["reproduced"]) <= {"yes", "partly", "no", "not measured"}


@pytest.mark.parametrize("protocol", ["linear_probe", "finetune_reinit"])
def test_layer_selection_end_to_end(protocol):
    cfg = _tiny_ls(protocol)
    df = E.layer_selection(cfg, progress=False)
    assert list(df["layer"]) == list(cfg.layers)
    assert {"layer", "transrate", "accuracy", "dim", "protocol"} <= set(df.columns)
    assert df["transrate"].notna().all() and df["accuracy"].between(0, 1).all()
    c = E.layer_correlation(df)
    for k in ("pearson", "kendall", "weighted_tau"):
        # nan only when the tiny fine-tunings tie (undefined correlation)
        assert (np.isnan(c[k]) and protocol == "finetune_reinit") or -1 <= c[k] <= 1
    if protocol == "linear_probe":
        assert all(np.isfinite(c[k]) for k in ("pearson", "kendall", "weighted_tau"))
    pvm = E.paper_vs_measured(layer_df=df)
    assert len(pvm) == 1
    E.plot_layer_selection(df)


def test_correlations_edge_cases():
    df = pd.DataFrame({"target": ["a"] * 4, "model": list("wxyz"),
                       "transrate": [1.0, 2.0, 3.0, 4.0], "logme": [1.0, 1.0, 1.0, 1.0],
                       "accuracy": [0.1, 0.2, 0.3, 0.5]})
    corr = E.correlations(df, estimators=["transrate", "logme"]).set_index("estimator")
    assert corr.loc["transrate", "pearson"] > 0.95
    assert corr.loc["transrate", "kendall"] == pytest.approx(1.0)
    assert np.isnan(corr.loc["logme", "pearson"])  # constant score: undefined, not an error
    with pytest.raises(ValueError, match="no column"):
        E.correlations(df, truth="nope")
    with pytest.raises(ValueError, match="stat"):
        E.correlation_table(E.correlations(df), "spearman")


def test_bad_inputs():
    with pytest.raises(ValueError, match="TransRateConfig"):
        E.model_selection("fast")
    with pytest.raises(ValueError, match="protocol"):
        E.layer_selection(dataclasses.replace(_tiny_ls("linear_probe"), protocol="magic"))
    with pytest.raises(ValueError, match="targets"):
        E.model_selection(dataclasses.replace(_tiny_ms(), targets=()))
