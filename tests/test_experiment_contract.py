"""One test holds every paper experiment to the experiment contract (docs/contributing.md,
"The experiment contract"), as scikit-learn's common checks hold every estimator to its
API.  The experiments come from the one registry, ``transfer_nb.experiments.PAPERS``."""
import dataclasses
import importlib
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest

from transfer_nb import experiments
from transfer_nb.experiments import base
from transfer_nb.experiments._cli import experiment_main

#: every experiment of the registry; those off the contract (experiments.OFF_CONTRACT) are
#: strict expected failures: each fails as soon as it passes, and must then move to PAPERS
PAPERS = tuple(pytest.param(p, marks=pytest.mark.xfail(
    strict=True, reason=f"{p} is not on the experiment contract yet: "
                        f"{experiments.OFF_CONTRACT[p]}"))
    if p in experiments.OFF_CONTRACT else p for p in experiments.EXPERIMENTS)
#: papers whose stored full run exists but does not decide the primary claim (strict xfail:
#: it fails as soon as a stored run decides it, and must then be removed from this dict)
UNDECIDED: dict = {}
#: papers whose targets cannot be an image folder of classes (they say so, clearly)
NO_FOLDER = {"regression": "regression", "pge": "task"}


def test_the_registry_names_every_experiment_on_disk():
    folder = Path(experiments.__file__).parent
    packages = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(experiments.PAPERS), "a paper package is missing from PAPERS"
    for name in experiments.OFF_CONTRACT:
        assert importlib.util.find_spec(f"transfer_nb.experiments.{name}") is not None
    assert experiments.EXPERIMENTS == experiments.PAPERS + tuple(experiments.OFF_CONTRACT)
    assert "which_estimator" in experiments.PAPERS


def _pkg(paper):
    try:
        return importlib.import_module(f"transfer_nb.experiments.{paper}")
    except ImportError as exc:        # pragma: no cover - a missing package is a failure
        pytest.fail(f"transfer_nb.experiments.{paper} does not import: {exc}")


@pytest.mark.parametrize("paper", PAPERS)
def test_package_faces(paper):
    pkg = _pkg(paper)
    for name in ("config", "run", "describe", "config_hash"):
        assert callable(getattr(pkg, name, None)), f"{paper}.{name} is not a function"
    for module in ("report", "plots"):
        assert inspect.ismodule(getattr(pkg, module, None)), f"{paper}.{module} is not a module"
    for name in ("checks", "verdicts", "summary"):
        assert callable(getattr(pkg.report, name, None)), f"{paper}.report.{name} missing"
    # one signature per face in every paper, pinned as scikit-learn's common checks pin an
    # estimator's (the lessons, the CLI and the docs call them alike)
    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
    empty = inspect.Parameter.empty
    assert params(pkg.config) == [("mode", None), ("targets", None), ("overrides", empty)]
    assert params(pkg.config_hash) == [("cfg", empty)]
    assert params(pkg.describe) == [("cfg", empty)]
    assert params(pkg.run) == [("cfg", empty), ("progress", True), ("use_cache", True)]
    assert params(pkg.report.checks) == [("results", inspect.Parameter.empty)]
    assert params(pkg.report.verdicts) == [("results", inspect.Parameter.empty), ("n_boot", None)]
    assert params(pkg.report.summary) == [("results", inspect.Parameter.empty),
                                          ("verdict_table", None), ("check_table", None)]
    importlib.import_module(f"transfer_nb.experiments.{paper}.__main__")


@pytest.mark.parametrize("paper", PAPERS)
def test_config_modes(paper):
    pkg = _pkg(paper)
    fast, full = pkg.config("fast"), pkg.config("full")
    for cfg, mode in ((fast, "fast"), (full, "full")):
        assert dataclasses.is_dataclass(cfg) and cfg.__dataclass_params__.frozen
        assert cfg.mode == mode
        assert isinstance(cfg.primary, str) and cfg.primary
    assert pkg.config_hash(full) == pkg.config_hash(pkg.config("full"))
    assert pkg.config_hash(full) != pkg.config_hash(fast)
    assert pkg.describe(fast) == pkg.describe(pkg.config("fast"))
    with pytest.raises(ValueError, match="mode must be one of"):
        pkg.config("medium")


@pytest.mark.parametrize("paper", PAPERS)
def test_confirm_preset(paper):
    """A paper with a confirmation plan has a third preset, ``config("confirm")``: frozen,
    hashed apart from the others, its seeds disjoint from theirs (DESIGN rule 6)."""
    from transfer_nb.experiments import confirm
    pkg = _pkg(paper)
    if confirm.plan(paper) is None:
        with pytest.raises(ValueError, match="mode must be one of"):
            pkg.config("confirm")
        pytest.skip(f"{paper} has no confirmation plan yet")
    cfg = pkg.config("confirm")
    assert dataclasses.is_dataclass(cfg) and cfg.__dataclass_params__.frozen
    assert cfg.mode == "confirm" and cfg.primary == pkg.config("full").primary
    assert pkg.config_hash(cfg) == pkg.config_hash(pkg.config("confirm"))
    assert pkg.config_hash(cfg) not in {pkg.config_hash(pkg.config(m)) for m in ("fast", "full")}
    assert not set(cfg.seeds) & (set(pkg.config("full").seeds) | set(pkg.config("fast").seeds))
    assert isinstance(pkg.describe(cfg), str)


@pytest.mark.parametrize("paper", PAPERS)
def test_config_targets_accept_a_folder_or_refuse_clearly(paper, tmp_path):
    from PIL import Image
    pkg = _pkg(paper)
    for c in ("cat", "dog", "fox"):
        (tmp_path / "mine" / c).mkdir(parents=True)
        (tmp_path / "empty" / c).mkdir(parents=True)
        for i in range(40):    # enough for every preset's draw (+ validation) and a test split
            Image.new("RGB", (8, 8), (6 * i, 100, 0)).save(tmp_path / "mine" / c / f"{i}.png")
    if paper in NO_FOLDER:
        with pytest.raises(ValueError, match=NO_FOLDER[paper]):
            pkg.config("fast", targets=[tmp_path / "mine"])
        return
    cfg = pkg.config("fast", targets=[tmp_path / "mine"])
    assert base.config_hash(cfg, "x") != base.config_hash(pkg.config("fast"), "x")
    assert str((tmp_path / "mine").resolve()) in repr(dataclasses.asdict(cfg))
    with pytest.raises(ValueError, match="unknown target"):
        pkg.config("fast", targets=["no-such-data-set"])
    with pytest.raises(ValueError, match="hold no image files"):   # checked before training
        pkg.config("fast", targets=[tmp_path / "empty"])


@pytest.mark.parametrize("paper", PAPERS)
def test_cli_parses_the_contract_flags(paper, capsys):
    main = importlib.util.find_spec(f"transfer_nb.experiments.{paper}.__main__")
    assert main is not None, f"python -m transfer_nb.experiments.{paper} does not exist"
    source = open(main.origin, encoding="utf-8").read()
    assert f'experiment_main("{paper}")' in source, "the CLI must be the shared experiment_main"
    with pytest.raises(SystemExit) as exc:
        experiment_main(paper, ["--save"])          # --save without --full
    assert exc.value.code == 2
    assert "--save stores the full run only" in capsys.readouterr().err


@pytest.mark.parametrize("paper", tuple(
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=UNDECIDED[p]))
    if isinstance(p, str) and p in UNDECIDED else p for p in PAPERS))
def test_stored_full_run_reports_by_the_contract(paper):
    """The stored full run (when present) goes through checks / verdicts / summary."""
    pkg = _pkg(paper)
    stored = base.load_run(paper)
    if stored is None:
        pytest.skip(f"no stored full run of {paper}")
    stored.cfg = pkg.config("full")
    verdicts = pkg.report.verdicts(stored)
    assert list(verdicts.columns[:len(base.VERDICT_COLUMNS)]) == list(base.VERDICT_COLUMNS)
    assert int(verdicts["primary"].sum()) == 1
    assert set(verdicts["verdict"]) <= {"reproduced", "not reproduced", "inconclusive",
                                        "fragile", "excluded"}
    primary = verdicts[verdicts["primary"]].iloc[0]
    # power (DESIGN rule 2): the interval decides; "fragile" is a decided interval that
    # leaving one item (or target) out flips (head2toe's exploratory run: brackets)
    assert primary["verdict"] in ("reproduced", "not reproduced", "fragile"), (
        f"the full run must decide {paper}'s primary claim, got {primary['verdict']}")
    assert np.isfinite(primary["low"]) and np.isfinite(primary["high"])
    assert isinstance(pkg.report.summary(stored), str)
    assert len(pkg.report.checks(stored))
