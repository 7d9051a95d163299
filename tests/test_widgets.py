"""Widget-state tests without a browser: build each widget, set control values, check
the computed state against the library functions it is supposed to call.

Most tests use a tiny convolutional net and random images passed as objects (the
widgets accept ``{name: module}`` / ``{name: dataset}``) so they run in milliseconds;
a few use the real EfficientNet-Lite0 on the embedded digits at 32 px.
"""
import re
import types

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import transfer_nb as tnb
from transfer_nb.data.base import stratified_split
from transfer_nb.data.toy import make_gaussian_classes
from transfer_nb_widgets import (CodingRateExplorer, FeatureExplorer, LayerSelector,
                     TransferabilityStepper)
from transfer_nb_widgets import coding_rate_explorer
from transfer_nb_widgets import _common
from transfer_nb_widgets._common import ERROR_CLASS


# ----------------------------------------------------------------------------- helpers
def _tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()


class _FailingNet(nn.Module):
    """Runs the first forward pass, then raises: an extraction that fails mid-way.

    Its layers are declared (as zoo models do) so that no tracing pass uses up the one
    forward call that works.
    """

    def __init__(self):
        super().__init__()
        self.body = _tiny_net()
        self.calls = 0
        tnb.models.layers.declare_feature_layers(self, ["body.2", "body.4"], input_size=12)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls >= 2:
            raise RuntimeError("simulated failure in the middle of the data")
        return self.body(x)


def _image_set(n=48, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    # class-dependent brightness so that the features carry the labels
    x = torch.rand(n, 3, 12, 12, generator=g) * 0.5 + y.view(-1, 1, 1, 1) * 0.25
    return TensorDataset(x, y)


def _error_html(widget):
    """The visible error labels (CSS class tnb-error) inside a widget's error area."""
    return [c for c in widget.errors.children if ERROR_CLASS in c._dom_classes]


def _shown_transrate(widget):
    match = re.search(r"TransRate = (-?[0-9.]+)", widget.transrate_label.value)
    assert match, widget.transrate_label.value
    return float(match.group(1))


def _has_png(output):
    return any("image/png" in o.get("data", {}) for o in output.outputs)


# ------------------------------------------------------------------ CodingRateExplorer
def test_coding_rate_explorer_matches_library():
    w = CodingRateExplorer()
    w.n_classes.value = 3
    w.separation.value = 3.0
    w.spread.value = 0.7
    w.dim.value = 5
    w.n.value = 150
    Z, y = make_gaussian_classes(n=150, k=3, dim=5, separation=3.0, spread=0.7, seed=w.seed)
    np.testing.assert_array_equal(w.Z, Z)
    expected = tnb.transrate(Z, y, eps=w.eps.value)
    assert w.transrate == pytest.approx(expected, rel=1e-12)
    assert _shown_transrate(w) == pytest.approx(expected, abs=6e-4)
    assert "tnb-transrate" in w.transrate_label._dom_classes
    terms = tnb.coding_rate_terms(Z, y, eps=w.eps.value)
    assert w.terms["R"] == pytest.approx(terms["R"])
    assert w.terms["R_given_y"] == pytest.approx(terms["R_given_y"])
    assert set(w.terms["per_class"]) == {0, 1, 2}
    # the table lists every term, the plot is a PNG
    for text in ("R(Z)", "R(Z|Y)", "R(Z<sub>2</sub>)", "TransRate"):
        assert text in w.table.value
    assert _has_png(w.plot)
    assert not _error_html(w)


def test_coding_rate_sliders_do_not_update_continuously():
    w = CodingRateExplorer()
    for s in (w.separation, w.spread, w.dim, w.n, w.eps):
        assert s.continuous_update is False


def test_larger_separation_gives_larger_transrate():
    w = CodingRateExplorer(k=3)
    values = []
    for sep in (0.5, 2.0, 4.0, 8.0):
        w.separation.value = sep
        values.append(w.transrate)
    assert values == sorted(values) and values[-1] > values[0] + 0.1


def test_eps_and_variant_follow_library():
    w = CodingRateExplorer()
    w.eps.value = 1e-2
    assert w.transrate == pytest.approx(tnb.transrate(w.Z, w.y, eps=1e-2))
    w.variant.value = "layerwise"
    assert w.transrate == pytest.approx(tnb.transrate(w.Z, w.y, eps=1e-2, variant="layerwise"))
    assert _shown_transrate(w) == pytest.approx(w.transrate, abs=6e-4)


def test_coding_rate_on_real_features_with_layer_dropdown():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    feats = {"a": rng.normal(size=(60, 8)) + y[:, None], "b": rng.normal(size=(60, 4))}
    w = CodingRateExplorer(features=feats, labels=y)
    assert w.source.value == "features" and w.layer.value == "b"
    assert w.transrate == pytest.approx(tnb.transrate(feats["b"], y))
    w.layer.value = "a"
    assert w.transrate == pytest.approx(tnb.transrate(feats["a"], y))
    assert _shown_transrate(w) == pytest.approx(w.transrate, abs=6e-4)
    w.source.value = "toy"  # back to the toy data, still working
    assert w.transrate == pytest.approx(tnb.transrate(w.Z, w.y))


def test_coding_rate_error_is_shown_and_widget_stays_usable():
    y = np.repeat([0, 1], 3)
    w = CodingRateExplorer(features={"a": np.ones((10, 3))}, labels=y)  # 6 labels, 10 rows
    assert len(_error_html(w)) == 1
    assert "label" in w.errors.message
    assert np.isnan(w.transrate) and w.terms == {}
    w.source.value = "toy"
    assert not _error_html(w)
    assert np.isfinite(w.transrate)


# -------------------------------------------------------------------- FeatureExplorer
def test_feature_explorer_extracts_and_plots():
    data = _image_set()
    w = FeatureExplorer(datasets={"blobs": data}, models={"tiny": _tiny_net()}, n_chunks=4,
                        batch_size=8)
    assert w.model_dropdown.value == "tiny"
    # the declared/traced defaults: "3" (ReLU) averaged is "4" (the pool), so only "4"
    assert list(w.layers.value) == tnb.models.layers.feature_layers(w.model) == ["0", "1", "2", "4"]
    w.select_layers(["2", "4"])
    assert w.extract() is True
    assert list(w.features) == ["2", "4"]
    assert w.features["2"].shape == (48, 6) and w.features["4"].shape == (48, 6)
    np.testing.assert_array_equal(w.labels, data.tensors[1].numpy())
    assert w.dataset is data
    expected = tnb.extract_features(_tiny_net(), data, layers=["2", "4"],
                                    progress=False)
    np.testing.assert_allclose(w.features["2"], expected["2"], rtol=1e-5, atol=1e-6)
    assert w.progress.value == w.progress.max == 48
    assert "Feature width" in w.summary.value
    assert w.features_summary["widths"] == {"2": 6, "4": 6}
    assert w.features_summary["n"] == 48 and w.features_summary["problems"] == []
    assert w.view_layer.value == "4" and _has_png(w.plot)
    w.view_layer.value = "2"
    assert _has_png(w.plot)


def test_feature_explorer_button_click_and_callback():
    seen = []
    w = FeatureExplorer(datasets={"blobs": _image_set()}, models={"tiny": _tiny_net()})
    w.on_extract(lambda explorer: seen.append(explorer.features))
    w.extract_button.click()
    assert len(seen) == 1 and seen[0] is w.features


def test_feature_explorer_empty_layer_list_is_an_error():
    w = FeatureExplorer(datasets={"blobs": _image_set()}, models={"tiny": _tiny_net()})
    w.layers.value = ()
    assert w.extract() is False
    assert len(_error_html(w)) == 1 and "layer" in w.errors.message
    assert w.features is None
    w.layers.value = ("4",)  # controls still work afterwards
    assert w.extract() is True and not _error_html(w)


def test_feature_explorer_failure_midway_keeps_previous_result():
    data = _image_set()
    w = FeatureExplorer(datasets={"blobs": data},
                        models={"tiny": _tiny_net(), "broken": _FailingNet()},
                        n_chunks=4, batch_size=16)  # 3 chunks of one batch each
    assert w.extract()
    before = w.features
    w.model_dropdown.value = "broken"
    assert w.extract() is False
    assert len(_error_html(w)) == 1
    assert "simulated failure" in w.errors.message
    assert 0 < w.progress.value < w.progress.max  # it failed in the middle
    assert w.progress.bar_style == "danger"
    assert w.features is before  # state unchanged
    assert not w.extract_button.disabled
    w.model_dropdown.value = "tiny"
    assert w.extract() and not _error_html(w) and w.features is not before


def test_feature_explorer_unknown_names_show_errors():
    w = FeatureExplorer(datasets=["no_such_dataset"], models=["no_such_model"])
    assert len(_error_html(w)) == 1 and "no_such_model" in w.errors.message
    assert w.extract() is False and _error_html(w)
    w2 = FeatureExplorer(datasets=["no_such_dataset"], models={"tiny": _tiny_net()})
    assert w2.extract() is False
    assert "no_such_dataset" in w2.errors.message


def test_feature_explorer_default_lists_come_from_library():
    w = FeatureExplorer(models={"tiny": _tiny_net()})
    assert "digits" in w.dataset_dropdown.options
    from transfer_nb.data import dataset_info
    assert all(dataset_info(name)["offline"] for name in w.dataset_dropdown.options)


@pytest.fixture(scope="module")
def lite0_digits():
    """EfficientNet-Lite0 features of 60 digits at 32 px, two layers, via the widget."""
    w = FeatureExplorer(datasets=["digits"], models=["efficientnet_lite0"], n=60,
                        image_size=32)
    layers = list(w.layers.options)
    w.select_layers([layers[2], layers[-1]])
    ok = w.extract()
    assert ok, w.errors.message
    return w


def test_feature_explorer_real_model(lite0_digits):
    w = lite0_digits
    assert len(w.labels) == 60 and len(np.unique(w.labels)) == 10
    layers = list(w.features)
    assert len(layers) == 2 and w.features[layers[-1]].shape == (60, 1280)
    assert w.dataset.name == "digits"
    assert _has_png(w.plot)


# ---------------------------------------------------------------------- LayerSelector
def _layer_features(seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 30)
    feats = {"low": rng.normal(size=(90, 6)) + 0.2 * y[:, None],
             "mid": rng.normal(size=(90, 6)) + 1.0 * y[:, None],
             "high": rng.normal(size=(90, 6)) + 3.0 * y[:, None]}
    return feats, y


def test_layer_selector_transrate_and_probe():
    from transfer_nb.training.transfer import linear_probe

    feats, y = _layer_features()
    w = LayerSelector(features=feats, labels=y)
    train, test = stratified_split(y, w.test_size, seed=w.seed)
    expected = tnb.transrate_per_layer({k: v[train] for k, v in feats.items()}, y[train])
    np.testing.assert_allclose(w.transrates.values, expected.values)
    assert list(w.transrates.index) == ["low", "mid", "high"]
    assert w.value == w.chosen_layer == expected.idxmax() == "high"
    assert w.accuracies is None and w.correlation is None
    assert _has_png(w.plot)

    w.probe_button.click()
    assert not _error_html(w)
    acc = w.accuracies
    assert acc["high"] == pytest.approx(
        linear_probe(feats["high"][train], y[train], feats["high"][test], y[test]))
    assert acc["high"] > acc["low"]
    assert w.correlation["n"] == 3
    from scipy import stats
    assert w.correlation["kendall"] == pytest.approx(
        stats.kendalltau(w.transrates.values, acc.values)[0])
    assert w.correlation["pearson"] == pytest.approx(
        stats.pearsonr(w.transrates.values, acc.values)[0])
    assert "Kendall" in w.info.value and "probe" in w.table.value

    w.layer.value = "mid"  # the user overrides the choice
    assert w.value == w.chosen_layer == "mid"
    w.eps.value = 1e-2  # re-scored, the user's choice and the probes are kept
    assert w.value == "mid" and w.accuracies is not None
    assert w.transrates["high"] == pytest.approx(
        tnb.transrate(feats["high"][train], y[train], eps=1e-2))


def test_layer_selector_errors():
    w = LayerSelector()
    assert w.scores is None and w.probe_button.disabled
    assert w.measure() is False and _error_html(w)
    feats, y = _layer_features()
    assert w.set_features(feats, y[:10]) is False
    assert "rows" in w.errors.message and w.scores is None
    assert w.set_features(feats, y) is True and not _error_html(w)
    assert w.value == "high"
    w2 = LayerSelector(features={}, labels=y)
    assert _error_html(w2)


def test_layer_selector_from_model(lite0_digits):
    # the model object the explorer loaded (loading it again by name costs seconds)
    w = LayerSelector(model=lite0_digits.model, dataset="digits", n=60, image_size=32,
                      layers=["blocks.1", "blocks.2"])
    assert not _error_html(w), w.errors.message
    assert list(w.scores.index) == ["blocks.1", "blocks.2"]
    assert w.value == w.scores["transrate"].idxmax()
    assert w.measure()
    assert ((w.accuracies >= 0) & (w.accuracies <= 1)).all()


def test_layer_selector_unknown_model_is_an_error():
    w = LayerSelector(model="no_such_model", dataset="digits", n=30, image_size=32)
    assert _error_html(w) and "no_such_model" in w.errors.message


# ------------------------------------------------------------------------------ stepper
def test_stepper_refuses_steps_before_their_prerequisite():
    s = TransferabilityStepper(datasets={"blobs": _image_set()}, models={"tiny": _tiny_net()})
    assert s.step == 1 and s.body.children == (s.explorer,)
    assert s.go_to(3) is False
    assert s.step == 1 and "step 1" in s.message
    assert "tnb-error" in s.message_html._dom_classes
    assert s.next() is False and s.step == 1  # step 2 also needs step 1
    assert s.selector.scores is None and s.coding.source.value == "toy"

    assert s.explorer.extract()
    assert s.go_to(3) is False and "step 2" in s.message  # step 2 not run yet
    assert s.next() is True and s.step == 2 and s.message is None
    assert s.coding.source.value == "features"
    assert s.coding.transrate == pytest.approx(
        tnb.transrate(s.explorer.features["4"], s.explorer.labels))  # the last layer
    s.coding.eps.value = 1e-2
    assert s.next() is True and s.step == 3
    assert s.body.children == (s.selector,)
    assert s.selector.eps.value == pytest.approx(1e-2)  # step 3 uses step 2's eps
    assert list(s.selector.scores.index) == list(s.explorer.features)
    assert s.step_done == {1: True, 2: True, 3: True}

    # a new extraction in step 1 makes step 2 due again
    assert s.back() and s.back() and s.step == 1
    assert s.explorer.extract()
    assert s.go_to(3) is False and s.step == 1
    assert s.go_to(2) and s.go_to(3)
    assert s.selector.features["4"] is s.explorer.features["4"]


def test_stepper_buttons():
    s = TransferabilityStepper(datasets={"blobs": _image_set()}, models={"tiny": _tiny_net()})
    s._guard.window = 0  # clicks faster than a person: no double-click protection here
    s.next_button.click()
    assert s.step == 1 and s.message
    s.explorer.extract_button.click()
    s.next_button.click()
    assert s.step == 2
    s.back_button.click()
    assert s.step == 1 and s.message is None


def _stepper(**data):
    return TransferabilityStepper(datasets={"blobs": _image_set(**data)},
                                  models={"tiny": _tiny_net()})


def test_stepper_refusal_clears_after_extraction():
    s = _stepper()
    assert s.next() is False and "needs features" in s.message
    assert "tnb-error" in s.message_html._dom_classes and s.message_html.value
    assert s.explorer.extract()
    # the cause is gone: so is the refusal, before any new click
    assert s.message is None and s.message_html.value == ""
    assert "tnb-error" not in s.message_html._dom_classes
    assert s.next() and s.step == 2


def test_stepper_unscorable_data_flagged_at_extraction_in_plain_words():
    # 6 images, classes 0..3 with counts [2, 1, 2, 1]: classes 1 and 3 have one sample
    x = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 0, 1, 2, 2, 3])
    s = TransferabilityStepper(datasets={"few": TensorDataset(x, y)},
                               models={"tiny": _tiny_net()})
    assert s.explorer.extract()
    flagged = " ".join(s.explorer.notes.notes)
    assert "[1, 3]" in flagged and "np." not in flagged
    assert "tnb-warning" in s.explorer.notes._dom_classes
    assert s.explorer.features_summary["scorable"] is False
    assert s.next() is False and s.step == 1
    # the reason is shown in the stepper, where the learner is, in plain words
    assert "[1, 3]" in s.message and "np.int64" not in s.message
    assert "step 2's panel" not in s.message


def test_stepper_error_of_step_2_shown_in_visible_step(monkeypatch):
    s = _stepper()
    assert s.explorer.extract()

    def broken(*args, **kwargs):
        raise ValueError("simulated coding-rate failure")
    monkeypatch.setattr(coding_rate_explorer, "coding_rate_terms", broken)
    assert s.next() is False and s.step == 1 and s.body.children == (s.explorer,)
    assert "simulated coding-rate failure" in s.message
    assert "tnb-error" in s.message_html._dom_classes
    monkeypatch.undo()
    assert s.next() and s.step == 2 and s.message is None


def test_stepper_eps_in_sync_both_ways():
    s = _stepper()
    assert s.explorer.extract() and s.next() and s.step == 2
    s.coding.eps.value = 1e-2
    assert s.next() and s.selector.eps.value == pytest.approx(1e-2)
    s.selector.eps.value = 1e-3  # set in step 3
    assert s.coding.eps.value == pytest.approx(1e-3)
    assert s.back() and s.step == 2 and s.coding.eps.value == pytest.approx(1e-3)
    assert s.coding.transrate == pytest.approx(
        tnb.transrate(s.explorer.features["4"], s.explorer.labels, eps=1e-3))
    assert s.next() and s.selector.eps.value == pytest.approx(1e-3)  # not reset


def test_stepper_repeated_clicks_are_ignored(monkeypatch):
    # The guard's clock is frozen: a double click is two clicks at the same instant, and
    # the window is crossed only when the test says so, however slow the machine is.
    clock = types.SimpleNamespace(monotonic=lambda: now[0])
    now = [1000.0]
    monkeypatch.setattr(_common, "time", clock)
    s = _stepper()
    extractions = []
    s.explorer.on_extract(lambda explorer: extractions.append(explorer.features))
    s.explorer.extract_button.click()
    s.explorer.extract_button.click()  # the second click of a double click
    assert len(extractions) == 1
    now[0] += _common.REPEAT_WINDOW_S + 0.01  # a later click is a new request
    s.explorer.extract_button.click()
    assert len(extractions) == 2
    s.next_button.click()
    s.next_bottom.click()  # a double click on Next (either copy) does not skip step 2
    assert s.step == 2
    # while a move or an extraction runs, moves are ignored
    s.busy = True
    assert s.go_to(3) is False and s.step == 2 and s.message is None
    s.busy = False
    s.explorer.busy = True
    assert s.explorer.extract() is False and len(extractions) == 2
    assert s.go_to(3) is False and s.step == 2
    s.explorer.busy = False
    assert s.go_to(3) and s.step == 3


def test_stepper_layout_one_explanation_and_buttons_at_both_ends():
    s = _stepper()
    assert s.explorer.about is None and s.coding.about is None and s.selector.about is None
    assert s.children[-1].children == (s.back_bottom, s.next_bottom)
    assert s.back_bottom.disabled and not s.next_bottom.disabled
    assert s.about.selected_index is None  # folded
    assert "forward pass" in s.about.children[0].value
    assert s.explorer.extract() and s.next()
    assert "coding rate" in s.about.children[0].value


def test_coding_rate_explorer_bad_variant_names_the_argument():
    with pytest.raises(ValueError, match=r"variant.*'snippet', 'layerwise', 'projected'"):
        CodingRateExplorer(variant="x")


def test_results_are_observable_traitlets():
    import traitlets

    w = CodingRateExplorer()
    seen = []
    w.observe(lambda change: seen.append(change["new"]), names="transrate")
    w.separation.value = 5.0
    assert seen == [w.transrate] and w.transrate == pytest.approx(tnb.transrate(w.Z, w.y))

    feats, y = _layer_features()
    sel = LayerSelector(features=feats, labels=y)
    chosen = []
    sel.observe(lambda change: chosen.append(change["new"]), names="chosen_layer")
    sel.layer.value = "mid"
    assert chosen == ["mid"] and sel.chosen_layer == "mid"
    sel.chosen_layer = "low"  # from code, the dropdown follows
    assert sel.layer.value == "low" and sel.value == "low"
    assert sel.transrate == pytest.approx(sel.scores.loc["low", "transrate"])
    holder = traitlets.HasTraits()
    holder.add_traits(layer=traitlets.Unicode(allow_none=True))
    traitlets.link((sel, "chosen_layer"), (holder, "layer"))
    holder.layer = "high"
    assert sel.layer.value == "high"

    fe = FeatureExplorer(datasets={"blobs": _image_set()}, models={"tiny": _tiny_net()})
    summaries = []
    fe.observe(lambda change: summaries.append(change["new"]), names="features_summary")
    assert fe.extract()
    assert summaries[-1]["n"] == 48 and summaries[-1]["n_classes"] == 3
    assert summaries[-1]["widths"] == {"0": 4, "1": 4, "2": 6, "4": 6}


def test_coding_rate_notes_fewer_samples_than_dimensions_and_two_classes():
    w = CodingRateExplorer(n=10, dim=64, k=3)
    assert any("Fewer samples than dimensions (n = 10 points in d = 64)" in note
               for note in w.notes.notes)
    assert "tnb-warning" in w.notes._dom_classes
    w.n.value = 200
    w.dim.value = 2
    assert w.notes.notes == [] and "tnb-warning" not in w.notes._dom_classes
    w.n_classes.value = 2
    w.separation.value = 10.0
    w.spread.value = 0.05  # perfectly separated, yet ~0 under both un-centred variants
    for variant in ("snippet", "layerwise"):
        w.variant.value = variant
        assert abs(w.transrate) < 0.01
        assert any("snippet and the layerwise variant" in note for note in w.notes.notes)
    w.variant.value = "projected"
    assert w.transrate > 1 and w.notes.notes == []


def test_never_minus_zero():
    from transfer_nb_widgets._common import fmt

    assert fmt(-1e-5) == "0.000" and fmt(-0.0) == "0.000" and fmt(-0.0006) == "-0.001"
    w = CodingRateExplorer(k=2, separation=10.0, spread=0.05)
    assert "-0.00" not in w.transrate_label.value and "-0.00" not in w.table.value


def test_layer_selector_points_out_probe_ties():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(2), 30)
    feats = {"a": rng.normal(size=(60, 4)) + 10.0 * y[:, None],
             "b": rng.normal(size=(60, 4)) + 8.0 * y[:, None],
             "c": rng.normal(size=(60, 4))}
    w = LayerSelector(features=feats, labels=y)
    assert w.measure()
    assert w.accuracies["a"] == w.accuracies["b"] == 1.0 and w.accuracies["c"] < 1.0
    assert w.probe_ties == ["a", "b"]
    assert w.best_probe_layer == max(["a", "b"], key=lambda k: w.transrates[k])
    assert "tied at 1.000: a, b" in w.info.value and "Best probe" in w.info.value
