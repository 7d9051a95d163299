"""Pre-registered confirmations (DESIGN rule 6): every stored confirmation was
pre-registered in an earlier commit of its own with the same config hash; the command
refuses a confirmation without a committed, matching pre-registration; the fixed split
keeps every seed's training images out of the test set."""
import dataclasses
import importlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transfer_nb.experiments._cli import experiment_main
from transfer_nb.experiments import PAPERS, base, confirm

ROOT = Path(__file__).resolve().parents[1]
STORED = sorted(ROOT.glob("results/*/confirm/run.json"))


def _git(*args, cwd=ROOT):
    return confirm.git(cwd, *args)


def _has_history() -> bool:
    return _git("rev-parse", "HEAD") is not None


@pytest.mark.parametrize("run_json", STORED or [None],
                         ids=[p.parent.parent.name for p in STORED] or ["none"])
def test_stored_confirmation_was_preregistered_before_it_ran(run_json):
    if run_json is None:
        pytest.skip("no stored confirmation under results/*/confirm/")
    if not _has_history():
        pytest.skip("this checkout has no git history: the order of the commits cannot be "
                    "checked")
    paper = run_json.parent.parent.name
    meta = json.loads(run_json.read_text())
    pre = confirm.load_preregistration(paper)
    assert pre is not None, f"results/{paper}/confirm/ holds a run but no preregistration.json"
    assert meta["mode"] == "confirm"
    assert meta["config_hash"] == pre["config_hash"], (
        f"{paper}: the stored confirmation ran another config than the pre-registered one")
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    assert pre["config_hash"] == pkg.config_hash(pkg.config("confirm")), (
        f"{paper}: config('confirm') changed after it was pre-registered")
    pre_commit = confirm.preregistration_commit(paper)
    assert pre_commit is not None, f"{paper}: the pre-registration was never committed"
    assert meta.get("preregistration_commit") == pre_commit
    rel = str(run_json.relative_to(ROOT))
    added = _git("log", "--diff-filter=A", "--format=%H", "--", rel)
    if not added:
        pytest.skip(f"{rel} is not committed yet")
    run_commit = added.splitlines()[-1]
    assert run_commit != pre_commit, f"{paper}: pre-registration and run in one commit"
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", pre_commit, run_commit],
                              cwd=ROOT, capture_output=True)
    assert ancestor.returncode == 0, (
        f"{paper}: the pre-registration commit {pre_commit[:10]} is not an ancestor of "
        f"{run_commit[:10]}, the commit that stored the run")
    # the pre-registration's commit holds nothing else
    files = _git("show", "--name-only", "--format=", pre_commit).split()
    assert files == [str(confirm.preregistration_path(paper).relative_to(ROOT))]


@pytest.mark.parametrize("paper", confirm.papers())
def test_preregistration_matches_the_confirm_preset(paper):
    pre = confirm.load_preregistration(paper)
    if pre is None:
        pytest.skip(f"{paper}: not pre-registered yet")
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    cfg = pkg.config("confirm")
    assert pre["config_hash"] == pkg.config_hash(cfg)
    assert pre["seeds"] == list(cfg.seeds)
    assert set(pre["new_targets"]) <= set(pre["targets"])


@pytest.mark.parametrize("paper", confirm.papers())
def test_plan_is_complete_and_targets_seeds_are_new(paper):
    """Seeds disjoint from every earlier run, >= 2 targets no earlier run used, every
    target on the fixed split, and the plan names every secondary with its rule."""
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    cfg, plan = pkg.config("confirm"), confirm.plan(paper)
    earlier = plan["earlier"]
    assert not set(cfg.seeds) & set(earlier["seeds_used"])
    assert not set(cfg.seeds) & (set(pkg.config("full").seeds) | set(pkg.config("fast").seeds))
    assert len(plan["new_targets"]) >= 2
    assert not set(plan["new_targets"]) & set(earlier["targets_used"])
    names = confirm.preregistration(paper)["targets"]
    assert set(plan["new_targets"]) <= set(names)
    specs = getattr(cfg, "tasks", None) or cfg.targets
    assert all(base.split_option(t) == "fixed" for t in specs)
    assert plan["secondary"] and all({"claim", "rule"} <= set(s) for s in plan["secondary"])
    assert all({"item", "reason"} <= set(e) for e in plan["exclusions"])


# ------------------------------------------------------------------ the checks, on a toy repo
def _repo(tmp_path):
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    return tmp_path


def _commit(root, *paths, message="c"):
    subprocess.run(["git", "add", *map(str, paths)], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, check=True)
    return confirm.git(root, "rev-parse", "HEAD")


def test_check_preregistration_refuses_missing_uncommitted_or_other_hash(tmp_path):
    root = _repo(tmp_path)
    (root / "README").write_text("x")
    _commit(root, "README")
    with pytest.raises(ValueError, match="no pre-registration"):
        confirm.check_preregistration("regression", "abc", root)
    path = confirm.preregistration_path("regression", root)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"config_hash": "abc"}))
    with pytest.raises(ValueError, match="not committed"):
        confirm.check_preregistration("regression", "abc", root)
    with pytest.raises(ValueError, match="design changed"):
        confirm.check_preregistration("regression", "xyz", root)
    commit = _commit(root, path)
    assert confirm.check_preregistration("regression", "abc", root) == commit
    assert confirm.preregistration_commit("regression", root) == commit
    path.write_text(json.dumps({"config_hash": "abc", "edited": True}))   # edited after
    with pytest.raises(ValueError, match="not committed"):
        confirm.check_preregistration("regression", "abc", root)
    with pytest.raises(ValueError, match="written once"):
        confirm.write_preregistration("regression", root)


def test_no_git_history_means_no_commit(tmp_path):
    assert confirm.preregistration_commit("regression", tmp_path) is None


def test_cli_refuses_a_confirmation_without_its_preregistration(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(confirm, "preregistration_path",
                        lambda paper, root=None: tmp_path / paper / "preregistration.json")
    assert experiment_main("regression", ["--confirm"]) == 2
    err = capsys.readouterr().err
    assert "--confirm" in err and "no pre-registration" in err
    with pytest.raises(SystemExit):
        experiment_main("regression", ["--confirm", "--full"])
    with pytest.raises(SystemExit):
        experiment_main("regression", ["--confirm", "--targets", "digits"])


def test_every_paper_has_a_confirmation_plan_and_preset():
    # issue 34: six confirmations; a paper added without a plan fails here
    assert set(confirm.papers()) == set(PAPERS)
    for paper in PAPERS:
        pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
        assert pkg.config("confirm").mode == "confirm"


def test_confirm_runs_are_stored_in_their_own_folder(tmp_path):
    res = base.Results("toy", pd.DataFrame({"target": ["a", "b"], "x": [1.0, 2.0]}),
                       {"curves": pd.DataFrame({"target": ["a"], "y": [0.5]})},
                       {"mode": "confirm", "config_hash": "h"})
    folder = base.save_run(res, root=tmp_path)
    assert folder == tmp_path / "results" / "toy" / "confirm"
    assert base.load_run("toy", root=tmp_path) is None
    back = base.load_run("toy", current_hash="h", root=tmp_path, confirm=True)
    assert back.meta["stale"] is False and len(back.table) == 2
    cut = confirm.restrict(back, ["b"])
    assert list(cut.table["x"]) == [2.0] and len(cut.tables["curves"]) == 0


# ------------------------------------------------------------------ config hash, late fields
def test_late_fields_leave_the_hash_alone_at_their_default():
    @dataclasses.dataclass(frozen=True)
    class Old:
        a: int = 1

    @dataclasses.dataclass(frozen=True)
    class New:
        a: int = 1
        b: str = base.late_field("x")

    assert base.config_hash(New(), "v") == base.config_hash(Old(), "v")
    assert base.config_hash(New(b="y"), "v") != base.config_hash(Old(), "v")


# ------------------------------------------------------------------ the fixed split
def _overlap(spec, seed):
    train, test = base.load_target(spec, 8, seed)
    return len(set(train.source_indices.tolist()) & set(test.source_indices.tolist())), train


def test_fixed_split_keeps_every_seeds_training_images_out_of_the_test_set():
    seeded = base.TargetSpec("lowercase", "glyphs", 5, 10_000, (("chars", "lowercase"),))
    fixed = dataclasses.replace(seeded, options=seeded.options + (("split", "fixed"),))
    assert _overlap(seeded, 1)[0] > 0          # the stored runs' draw (why the option exists)
    draws = []
    for seed in range(6):
        n, train = _overlap(fixed, seed)
        assert n == 0, f"seed {seed}: {n} training images are in the test set"
        assert np.bincount(np.asarray(train.targets)).tolist() == [5] * 26
        draws.append(frozenset(train.source_indices.tolist()))
    assert len(set(draws)) == 6               # each seed draws its own training images
    assert frozenset(_overlap(fixed, 3)[1].source_indices.tolist()) == draws[3]


def test_fixed_split_for_a_regression_target():
    spec = base.TargetSpec("r", "rotated_digits", 0, 10_000, (("split", "fixed"),), 40)
    draws = set()
    for seed in (0, 3, 10):
        n, train = _overlap(spec, seed)
        assert n == 0 and len(train) == 40
        draws.add(frozenset(train.source_indices.tolist()))
    assert len(draws) == 3
    with pytest.raises(ValueError, match="split must be"):
        base.load_target(dataclasses.replace(spec, options=(("split", "odd"),)), 8, 0)


@pytest.mark.parametrize("paper", ["regression", "transrate"])
def test_exclusion_analysis_is_the_primary_with_the_items_declared_out(paper):
    """A config that declares random-init "in" gets one more secondary row: the primary
    recomputed with it declared out (the exploratory run's rule)."""
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    stored = base.load_run(paper)
    if stored is None:
        pytest.skip(f"no stored full run of {paper}")
    full = pkg.config("full")
    stored.cfg = full
    one = confirm.restrict(stored, [full.targets[1].name])
    out = pkg.report.verdicts(one, n_boot=20)
    assert not out["claim"].str.startswith("exclusion analysis").any()
    one.cfg = dataclasses.replace(full, targets=(full.targets[1],),
                                  degenerate=(("random-init", "in"),))
    both = pkg.report.verdicts(one, n_boot=20)
    row = both.iloc[-1]
    assert row["claim"].startswith("exclusion analysis") and not row["primary"]
    assert "random-init declared out" in row["claim"]
    assert row["estimate"] == pytest.approx(out[out["primary"]].iloc[0]["estimate"])
    assert both[both["primary"]].iloc[0]["estimate"] != pytest.approx(row["estimate"])


def test_an_empty_table_round_trips(tmp_path):
    """A run whose extra table is empty (transrate's confirmation has no layer cases)
    stores it and loads it back empty."""
    res = base.Results("toy", pd.DataFrame({"target": ["a"], "x": [1.0]}),
                       {"layers": pd.DataFrame()}, {"mode": "confirm"})
    base.save_run(res, root=tmp_path)
    back = base.load_run("toy", root=tmp_path, confirm=True)
    assert back.tables["layers"].empty and len(back.table) == 1
