"""score_models when things go wrong, and the one data rule: a failing model loses nothing
else, class counts are checked by name before any model runs, the same images are scored
whether the data is a path or a dataset, each model sees its own resolution, and parallel
jobs share the cores.

Every call pins ``device="cpu"`` (CUDA machines compare the same arithmetic)."""
import inspect
import os

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_score_models import Net
from transfer_nb._threads import torch_threads
from transfer_nb.coding_rate import transrate
from transfer_nb.data import load_dataset
from transfer_nb.features import extract_features
from transfer_nb.models import zoo
from transfer_nb.selection import _jobs, score_layers, score_models
from transfer_nb.training.transfer import linear_probe

CPU = dict(device="cpu", cache=False, progress=False)


def make_folder(root, counts, size=8, seed=0):
    """``root/<class>/<i>.png``: ``counts[class]`` random colour images of ``size`` px, a
    class-dependent brightness so that the classes are separable."""
    rng = np.random.default_rng(seed)
    for k, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 80, size=(size, size, 3)) + 50 * k
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No torch hub cache and an unreachable download host: torchvision weights fail."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("TRANSFER_NB_OFFLINE", raising=False)
    monkeypatch.setattr(zoo, "_host_reachable", lambda host, *a, **k: False)


@pytest.fixture(scope="module")
def digits_parts():
    def part(split, n):
        return load_dataset("digits", split=split, n=n, image_size=12, seed=0)
    return part("train", 60), part("test", 40)


# ------------------------------------------------------------------ nothing is lost
def test_unavailable_weights_keep_the_other_models(offline, digits_parts):
    train, test = digits_parts
    kw = dict(estimators=["transrate", "leep"], test_data=test, ground_truth="linear_probe",
              **CPU)
    with pytest.warns(UserWarning, match=r"'resnet18' could not be scored: "
                                         r"WeightsUnavailableError: .*unreachable"):
        table = score_models({"mine": Net(0), "resnet18": "resnet18"}, train, **kw)
    alone = score_models({"mine": Net(0)}, train, **kw)
    assert list(table.index) == ["mine", "resnet18"]
    for col in ("transrate", "leep", "accuracy", "width", "params"):
        assert table.loc["mine", col] == alone.loc["mine", col]
    row = table.loc["resnet18"]
    assert np.isnan(row[["transrate", "leep", "accuracy", "width"]].astype(float)).all()
    assert row["note"].startswith("failed: WeightsUnavailableError: pretrained weights for "
                                  "'resnet18' could not be fetched")
    assert "Offline alternatives" not in row["note"]  # the first sentence only
    assert set(table.attrs["failed"]) == {"resnet18"}
    # known without the weights: torchvision's metadata of the default weights
    assert row["imagenet_top1"] == pytest.approx(69.758)


def test_errors_raise_and_nothing_scored(offline, digits_parts):
    train, _ = digits_parts
    with pytest.raises(zoo.WeightsUnavailableError, match="resnet18"):
        score_models([Net(0), "resnet18"], train, errors="raise", **CPU)
    with pytest.warns(UserWarning), pytest.raises(
            ValueError, match=r"no model could be scored: 'resnet18': WeightsUnavailableError"):
        score_models(["resnet18"], train, **CPU)
    with pytest.raises(ValueError, match="errors must be 'note' or 'raise'"):
        score_models([Net(0)], train, errors="ignore", **CPU)


def test_an_estimator_exception_or_nan_is_a_note(digits_parts):
    train, _ = digits_parts

    def boom(Z, y):
        raise RuntimeError("singular")

    estimators = {"boom": boom, "nan": lambda Z, y: float("nan"),
                  "mean": lambda Z, y: float(np.mean(Z))}
    table = score_models({"m": Net(1)}, train, estimators=estimators, **CPU)
    row = table.loc["m"]
    assert np.isnan(row["boom"]) and np.isnan(row["nan"])
    feats = extract_features(Net(1), train, layers="penultimate", device="cpu",
                             progress=False)["penultimate"]
    assert row["mean"] == pytest.approx(float(np.mean(feats)), rel=1e-6)
    assert row["note"] == "boom failed: RuntimeError: singular; nan is nan"
    assert table.attrs["failed"] == {}  # one score is left: the model was scored
    with pytest.raises(RuntimeError, match="singular"):
        score_models({"m": Net(1)}, train, estimators=estimators, errors="raise", **CPU)
    with pytest.raises(ValueError, match="model 'm': nan is nan"):
        score_models({"m": Net(1)}, train, estimators={"nan": estimators["nan"]},
                     errors="raise", **CPU)


# ----------------------------------------------------------- checks before the work
def test_small_classes_fail_by_name_before_any_model(tmp_path, monkeypatch):
    import transfer_nb.features as features

    root = make_folder(tmp_path / "imgs", {"cat": 8, "dog": 8, "rocket": 1})
    monkeypatch.setattr(features, "extract_features",
                        lambda *a, **k: pytest.fail("extraction ran before the check"))
    with pytest.raises(ValueError, match=r"class 'rocket' has 1 image: at least 2 images "
                                         r"per class are needed"):
        score_models([Net(0)], root, image_size=8, **CPU)
    with pytest.raises(ValueError, match=r"class 'rocket' has 1 image"):
        score_layers(Net(0), root, image_size=8, progress=False)

    two = make_folder(tmp_path / "two", {"cat": 8, "dog": 8, "rocket": 2})
    with pytest.raises(ValueError, match=r"class 'rocket' has 2 images, 1 held out for the "
                                         r"ground truth, 1 left to score.*test_data"):
        score_models([Net(0)], two, image_size=8, ground_truth="linear_probe", **CPU)


def test_without_ground_truth_every_image_is_scored(tmp_path):
    root = make_folder(tmp_path / "imgs", {"cat": 8, "dog": 8, "rocket": 2})
    table = score_models([Net(0)], root, estimators=["transrate"], image_size=8, **CPU)
    assert table.loc["Net", "n_train"] == 18
    data = load_dataset("folder", root=root, split="all", image_size=8, normalize="none")
    Z = extract_features(Net(0), data, layers="penultimate", device="cpu",
                         progress=False)["penultimate"]
    assert table.loc["Net", "transrate"] == pytest.approx(transrate(Z, data.targets), rel=1e-9)


def test_a_path_and_its_dataset_are_split_alike(tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 12, "b": 12, "c": 12})
    kw = dict(estimators=["transrate", "logme"], ground_truth="linear_probe", seed=3, **CPU)
    by_path = score_models({"m": Net(2, "imagenet")}, root, image_size=8, **kw)
    dataset = load_dataset("folder", root=root, split="all", image_size=8, seed=3)
    by_object = score_models({"m": Net(2, "imagenet")}, dataset, **kw)
    cols = ["n_train", "n_test", "transrate", "logme", "accuracy"]
    np.testing.assert_allclose(by_path[cols].to_numpy(float), by_object[cols].to_numpy(float),
                               rtol=1e-9)
    assert by_path.loc["m", "n_train"] == 27 and by_path.loc["m", "n_test"] == 9  # a quarter
    # the held-out quarter is the one stratified split: the probe there gives this accuracy
    from transfer_nb.data.base import stratified_split
    data = load_dataset("folder", root=root, split="all", image_size=8, seed=3,
                        normalize="imagenet")
    tr, te = stratified_split(data.targets, 0.25, 3)
    Z = extract_features(Net(2, "imagenet"), data, layers="penultimate", device="cpu",
                         progress=False)["penultimate"]
    assert by_path.loc["m", "accuracy"] == linear_probe(Z[tr], data.targets[tr], Z[te],
                                                        data.targets[te], seed=3)


def test_unreadable_image_and_skip_bad(tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 6, "b": 6})
    (root / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"broken\.png.*skip_bad=True"):
        score_models([Net(0)], root, image_size=8, **CPU)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        table = score_models([Net(0)], root, image_size=8, skip_bad=True, **CPU)
    assert table.loc["Net", "n_train"] == 12


# ---------------------------------------------------------------- defaults that fit
def test_each_model_at_its_own_resolution_with_an_upsampling_note(tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 6, "b": 6}, size=8)
    native16, native24 = Net(0), Net(1)
    native16.transfer_nb_input_size, native24.transfer_nb_input_size = 16, 24
    table = score_models({"n16": native16, "n24": native24}, root, estimators=["transrate"],
                         **CPU)
    assert table["image_size"].tolist() == [16, 24]
    assert table.loc["n16", "note"] == ""  # 2x: no note
    assert table.loc["n24", "note"] == (
        "images upsampled 3.0x (8 -> 24 px); a separate run at image_size=8 is faster, but "
        "scores at different image sizes are not comparable and its ranking can differ")
    same = score_models({"n16": native16, "n24": native24}, root, estimators=["transrate"],
                        image_size=8, **CPU)
    assert same["image_size"].tolist() == [8, 8] and (same["note"] == "").all()


def test_progress_is_on_by_default_and_test_size_is_renamed(digits_parts):
    for fn in (score_models, score_layers):
        assert inspect.signature(fn).parameters["progress"].default is True
        assert inspect.signature(fn).parameters["test_fraction"].default == 0.25
    train, _ = digits_parts
    kw = dict(estimators=["transrate"], ground_truth="linear_probe", **CPU)
    with pytest.warns(DeprecationWarning, match="test_size= is now test_fraction="):
        old = score_models([Net(3)], train, test_size=0.4, **kw)
    new = score_models([Net(3)], train, test_fraction=0.4, **kw)
    assert old.loc["Net", "transrate"] == new.loc["Net", "transrate"]
    assert new.loc["Net", "n_test"] == 20  # round(0.4 * 6) = 2 of each digit's 6


def test_jobs_share_the_cores(monkeypatch):
    monkeypatch.setattr(_jobs, "usable_cores", lambda: 8)
    assert _jobs.threads_per_job(1, 5, None, None) is None
    assert _jobs.threads_per_job(2, 5, None, None) == 4
    assert _jobs.threads_per_job(3, 2, None, None) == 4  # only 2 jobs can run
    assert _jobs.threads_per_job(16, 16, "loky", None) == 1
    assert _jobs.threads_per_job(2, 5, "dask", "tcp://x:1") is None  # remote workers
    before = torch.get_num_threads()
    with torch_threads(1, blas=True):
        assert torch.get_num_threads() == 1
        from threadpoolctl import threadpool_info
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before
    real = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.undo()
    assert _jobs.usable_cores() == real


def test_default_engine_threads_unless_fine_tuning(monkeypatch, digits_parts):
    train, test = digits_parts
    seen = []

    def fake_run(func, jobs, n_jobs, backend, *args, **kwargs):
        seen.append(backend)
        return [func(**job) for job in jobs]

    monkeypatch.setattr(_jobs, "run_jobs", fake_run)
    kw = dict(estimators=["transrate"], test_data=test, n_jobs=2, **CPU)
    score_models({"a": Net(0), "b": Net(1)}, train, **kw)
    score_models({"a": Net(0), "b": Net(1)}, train, ground_truth="fine_tune",
                 finetune={"epochs": 1, "batch_size": 30}, **kw)
    # fine-tuning seeds torch's global generator: processes, not threads
    assert seen == ["threading", "loky"]


def test_a_last_odd_job_gets_all_the_cores(monkeypatch):
    monkeypatch.setattr(_jobs, "usable_cores", lambda: 2)
    calls = []

    def job(name, threads):
        calls.append((name, threads, torch.get_num_threads()))
        return {"model": name}

    jobs = [{"name": n, "threads": None} for n in "abc"]
    before = torch.get_num_threads()
    progress = []
    rows = _jobs.run_jobs(job, jobs, 2, "threading", None, False,
                          lambda k, t: progress.append((k, t)))
    assert [r["model"] for r in rows] == ["a", "b", "c"]
    # a and b together on 1 thread each (one cap for the process), then c alone on all
    assert sorted(calls[:2]) == [("a", None, 1), ("b", None, 1)]
    assert calls[2] == ("c", None, before)
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    calls.clear()
    rows = _jobs.run_jobs(job, jobs, 2, "loky", None, False, None)
    assert [r["model"] for r in rows] == ["a", "b", "c"]
    # a and b ran in worker processes (their calls are not seen here); c here, on all cores
    assert calls == [("c", None, before)]
