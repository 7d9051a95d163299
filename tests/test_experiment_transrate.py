"""The TransRate experiment end to end on a tiny configuration (well under a minute)."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from transfer_nb.experiments import transrate as E
from transfer_nb.experiments.transrate.report import STRONG
from transfer_nb.stats import interval_verdict



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


def _lite0_data(image_size, n_train, n_test, seed=0):
    from transfer_nb.data import load_dataset
    from transfer_nb.models import load_model
    model = load_model("efficientnet_lite0", pretrained=True)
    kw = dict(image_size=image_size, seed=seed, normalize=model.transfer_nb_normalize)
    return (model, load_dataset("digits", split="train", n=n_train, **kw),
            load_dataset("digits", split="test", n=n_test, **kw))


def test_model_selection_end_to_end_and_cache():
    from transfer_nb.coding_rate import transrate
    from transfer_nb.estimators import hscore, logme
    from transfer_nb.features import extract_features
    from transfer_nb.stats import rank_correlations

    ms = _tiny_ms()
    df = E.model_selection(ms, progress=False)
    assert list(df["model"]) == ["efficientnet_lite0", "cnn-glyphs-1ep", "cnn-shapes-1ep",
                                 "resnet-glyphs-1ep"]
    assert list(df["kind"]) == ["ImageNet"] + ["trained source"] * 3
    assert (df["n_train"] == 50).all() and (df["n_test"] == 50).all()
    assert list(df["image_size"]) == [32, 16, 16, 16]
    # accuracy is a count of correct test images
    np.testing.assert_allclose(df["accuracy"] * 50, np.round(df["accuracy"] * 50), atol=1e-9)
    # the scores are the estimators on the penultimate features of the same images
    model, train, _ = _lite0_data(32, 50, 50)
    Z = extract_features(model, train, layers=["penultimate"], progress=False)["penultimate"]
    row = df.iloc[0]
    assert row["feature_dim"] == 1280
    assert row["transrate"] == pytest.approx(transrate(Z, train.targets))
    assert row["logme"] == pytest.approx(logme(Z, train.targets))
    assert row["hscore"] == pytest.approx(hscore(Z, train.targets))

    corr = E.correlations(df, n_boot=200)
    assert list(corr["estimator"]) == [*E.ESTIMATORS, "transrate_layerwise"]
    expected = rank_correlations(df[[*E.ESTIMATORS, "transrate_layerwise"]], df["accuracy"],
                                 n_boot=200)
    np.testing.assert_allclose(corr.drop(columns=["target", "estimator"]).to_numpy(float),
                               expected.to_numpy(float), equal_nan=True)
    table = E.correlation_table(corr)
    assert list(table.index) == ["digits", "mean"]
    assert table.loc["mean", "transrate"] == pytest.approx(expected.loc["transrate", "pearson"],
                                                           nan_ok=True)

    # second run comes from the cache and is identical
    df2 = E.model_selection(ms, progress=False)
    pd.testing.assert_frame_equal(df, df2)

    fig = E.plot_model_selection(df)
    assert len(fig.axes) == 1
    # bars: (digits, mean) x 6 estimators
    assert len(E.plot_correlations(corr).axes[0].patches) == 12
    timings = E.timing_table(df)
    assert timings["transrate"] == pytest.approx(df["time_transrate"].median())
    fig = E.plot_timings(df)
    assert [p.get_height() for p in fig.axes[0].patches] == pytest.approx(list(timings.values))


def test_layer_selection_linear_probe_values():
    from transfer_nb.coding_rate import transrate
    from transfer_nb.features import extract_features
    from transfer_nb.transfer import linear_probe

    cfg = _tiny_ls("linear_probe")
    df = E.layer_selection(cfg, progress=False)
    assert list(df["layer"]) == list(cfg.layers) and list(df["depth"]) == [1, 2, 3, 4]
    assert (df["protocol"] == "linear_probe").all()
    model, train, test = _lite0_data(32, 60, 60)
    feats = extract_features(model, train, layers=list(cfg.layers), progress=False)
    test_feats = extract_features(model, test, layers=list(cfg.layers), progress=False)
    for _, row in df.iterrows():
        Z = feats[row["layer"]]
        assert row["width"] == Z.shape[1]
        assert row["transrate"] == pytest.approx(transrate(Z, train.targets))
        assert row["transrate_layerwise"] == pytest.approx(
            transrate(Z, train.targets, variant="layerwise"))
        assert row["accuracy"] == pytest.approx(linear_probe(
            Z, train.targets, test_feats[row["layer"]], test.targets, seed=0))
    c = E.layer_correlation(df, n_boot=200)
    from scipy import stats
    assert c["pearson"] == pytest.approx(stats.pearsonr(df["transrate"], df["accuracy"])[0])
    assert c["n"] == 4 and c["pearson_low"] <= c["pearson"] <= c["pearson_high"]
    pvm = E.paper_vs_measured(layer_df=df)
    assert len(pvm) == 1
    assert pvm["reproduced"][0] == interval_verdict(c["pearson_low"], c["pearson_high"], STRONG)
    E.plot_layer_selection(df)


def test_layer_selection_finetune_reinit_values():
    from transfer_nb.coding_rate import transrate
    from transfer_nb.features import extract_features
    from transfer_nb.transfer import fine_tune

    cfg = _tiny_ls("finetune_reinit")
    df = E.layer_selection(cfg, progress=False)
    assert list(df["layer"]) == list(cfg.layers)
    model, train, test = _lite0_data(32, 30, 30)
    Z = extract_features(model, train, layers=["blocks.5"], progress=False)["blocks.5"]
    assert df.loc[1, "transrate"] == pytest.approx(transrate(Z, train.targets))
    # the paper's protocol: layers after blocks.5 re-initialised, everything fine-tuned
    res = fine_tune(model, train, test, epochs=1, lr=cfg.lr, batch_size=30, seed=0,
                    progress=False, optimizer="sgd", reinit_after="blocks.5", normalize="none")
    assert df.loc[1, "accuracy"] == pytest.approx(res["accuracy"])


def _layer_df(transrate, accuracy):
    return pd.DataFrame({"layer": [f"l{i}" for i in range(len(accuracy))],
                         "transrate": transrate, "accuracy": accuracy,
                         "protocol": "linear_probe"})


def test_paper_vs_measured_reads_the_intervals():
    acc = np.linspace(0.2, 0.9, 10)
    good = E.paper_vs_measured(layer_df=_layer_df(2 * acc + 1, acc))
    assert good["reproduced"][0] == "reproduced"
    assert "Pearson 1.00 [1.00, 1.00]" in good["this run measured"][0]
    bad = E.paper_vs_measured(layer_df=_layer_df(-acc, acc))
    assert bad["reproduced"][0] == "not reproduced"
    rng = np.random.default_rng(0)
    noisy = E.paper_vs_measured(layer_df=_layer_df(acc + rng.normal(scale=0.3, size=10), acc))
    assert noisy["reproduced"][0] == "inconclusive"  # r ~ 0.6, interval straddles 0.5

    # model selection: two targets, TransRate perfect on both; LogME anti-correlated on
    # "a" (TransRate's interval above LogME's) and equal to TransRate on "b" (overlap)
    acc = np.linspace(0.1, 0.9, 8)
    ms = pd.DataFrame({"target": ["a"] * 8 + ["b"] * 8, "model": list("abcdefgh") * 2,
                       "transrate": np.r_[acc, acc], "logme": np.r_[-acc, acc],
                       "accuracy": np.r_[acc, acc],
                       "time_transrate": 0.001, "time_logme": 0.01, "time_hscore": 0.02,
                       "time_leep": 0.0001, "time_nce": 0.0001})
    corr = E.correlations(ms, estimators=["transrate", "logme"], n_boot=200)
    pvm = E.paper_vs_measured(ms, corr, None).set_index("claim")
    verdicts = list(pvm["reproduced"])
    # TransRate is faster than LogME and H-score but not than LEEP / NCE: mixed
    assert verdicts == ["reproduced", "inconclusive", "mixed"]
    assert "a 1.00 [1.00, 1.00]; b 1.00 [1.00, 1.00]" in pvm["this run measured"].iloc[0]


def test_correlations_edge_cases():
    df = pd.DataFrame({"target": ["a"] * 4, "model": list("wxyz"),
                       "transrate": [1.0, 2.0, 3.0, 4.0], "logme": [1.0, 1.0, 1.0, 1.0],
                       "accuracy": [0.1, 0.2, 0.3, 0.5]})
    with pytest.warns(RuntimeWarning, match="constant"):
        corr = E.correlations(df, estimators=["transrate", "logme"]).set_index("estimator")
    assert corr.loc["transrate", "kendall"] == pytest.approx(1.0)
    assert corr.loc["transrate", "pearson"] == pytest.approx(0.9827076, abs=1e-6)
    assert np.isnan(corr.loc["logme", "pearson"])  # constant score: undefined, not an error
    with pytest.raises(ValueError, match="no column"):
        E.correlations(df, truth="nope")
    with pytest.raises(ValueError, match="stat"):
        E.correlation_table(E.correlations(df, estimators=["transrate"]), "spearman")


def test_bad_inputs():
    with pytest.raises(ValueError, match="TransRateConfig"):
        E.model_selection("fast")
    with pytest.raises(ValueError, match="protocol"):
        E.layer_selection(dataclasses.replace(_tiny_ls("linear_probe"), protocol="magic"))
    with pytest.raises(ValueError, match="targets"):
        E.model_selection(dataclasses.replace(_tiny_ms(), targets=()))
