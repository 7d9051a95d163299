"""The contract's validity gates (transfer_nb.experiments.gates) and base helpers."""
import numpy as np
import pandas as pd
import pytest

from transfer_nb.experiments import base, gates


def seeds_table(means, sd, n_seeds=3, seed=0, probe=None):
    rng = np.random.default_rng(seed)
    rows = []
    for m, mu in enumerate(means):
        for s in range(n_seeds):
            row = {"model": f"m{m}", "seed": s, "accuracy": mu + sd * rng.normal()}
            if probe is not None:
                row["linear_probe"] = probe[m]
            rows.append(row)
    return pd.DataFrame(rows)


def test_discrimination_gate_counts_seed_noise():
    # spread 0.10 is 3.3 binomial SE at n_test=250 (0.03), but seeds vary by 0.10
    means = [0.50, 0.55, 0.60]
    exact = seeds_table(means, 0.0)
    assert gates.discrimination_gate(exact, n_test=250)["passes"]
    noisy = seeds_table(means, 0.10, seed=1)
    out = gates.discrimination_gate(noisy, n_test=250)
    assert not out["passes"] and "SE" in out["reason"]


def test_discrimination_gate_ceiling():
    out = gates.discrimination_gate(seeds_table([0.6, 0.98], 0.0), n_test=1000)
    assert not out["passes"] and ">= 0.97" in out["reason"]


def test_training_gate_catches_collapse_and_a_lost_probe():
    t = seeds_table([0.6, 0.7], 0.0, probe=[0.5, 0.6])
    assert gates.training_gate(t, chance=0.2, n_test=250)["passes"]
    t.loc[(t.model == "m1") & (t.seed == 2), "accuracy"] = 0.21
    out = gates.training_gate(t, chance=0.2, n_test=250)
    assert out["collapsed"] == ["m1/seed 2"] and not out["passes"]
    below = seeds_table([0.5, 0.5], 0.0, probe=[0.6, 0.6])
    out = gates.training_gate(below, chance=0.2, n_test=250)
    assert out["above_probe"] == 0.0 and "under-trained" in out["reason"]


def test_plateau():
    assert gates.plateau([0.2, 0.5, 0.7, 0.80, 0.81, 0.81, 0.81, 0.81])
    assert not gates.plateau([0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert not gates.plateau([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    t = seeds_table([0.6, 0.7], 0.0)
    out = gates.training_gate(t, probe=None, chance=0.2, n_test=250,
                              curves=[[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]])
    assert not out["passes"] and "still rising" in out["reason"]


def test_gate_table_and_passing():
    table = gates.gate_table({"a": {"x": {"passes": True, "reason": ""}},
                              "b": {"x": {"passes": False, "reason": "too flat"}}})
    assert gates.passing(table) == ["a"]
    assert table.loc[1, "reason"] == "x: too flat"


def test_target_spec_from_name_folder_and_errors(tmp_path):
    assert base.target_spec("digits") == base.TargetSpec("digits", "digits")
    for c in ("cat", "dog"):
        (tmp_path / "pets" / c).mkdir(parents=True)
    spec = base.target_spec(tmp_path / "pets", per_class=4)
    assert spec.dataset == "folder" and spec.per_class == 4 and spec.name == "pets"
    assert dict(spec.options)["root"] == str((tmp_path / "pets").resolve())
    with pytest.raises(ValueError, match="unknown target 'digitz'"):
        base.target_spec("digitz")
    with pytest.raises(ValueError, match="needs regression targets"):
        base.target_spec(tmp_path / "pets", task="regression")


def test_load_target_sizes():
    train, test = base.load_target(base.TargetSpec("digits", "digits", 3, 40), image_size=8)
    assert len(train) == 30 and len(test) == 40
    assert np.bincount(np.asarray(train.targets)).tolist() == [3] * 10


def test_save_and_load_run(tmp_path):
    res = base.Results("toy", pd.DataFrame({"a": [1, 2]}), {"extra": pd.DataFrame({"b": [3]})},
                       {"config_hash": "abc", "mode": "full", "wall_clock_s": 1.5})
    folder = base.save_run(res, root=tmp_path)
    assert folder == tmp_path / "results" / "toy"
    back = base.load_run("toy", current_hash="abc", root=tmp_path)
    assert back.table["a"].tolist() == [1, 2] and back.tables["extra"]["b"].tolist() == [3]
    assert back.meta["stale"] is False and back.meta["wall_clock_s"] == 1.5
    assert {"commit", "device", "date", "versions"} <= set(back.meta)
    assert base.load_run("toy", current_hash="xyz", root=tmp_path).meta["stale"] is True
    assert base.load_run("none", root=tmp_path) is None


def test_verdict_table_needs_one_primary():
    row = dict(paper=0.8, statistic="Pearson", estimate=0.5, low=0.1, high=0.8, rule="r",
               verdict="reproduced")
    t = base.verdict_table([base.verdict_row("a", primary=True, **row),
                            base.verdict_row("b", primary=False, **row)])
    assert list(t.columns) == list(base.VERDICT_COLUMNS)
    with pytest.raises(ValueError, match="exactly one primary"):
        base.verdict_table([base.verdict_row("a", primary=False, **row)])
    with pytest.raises(ValueError, match="verdict must be one of"):
        base.verdict_row("a", primary=True, **{**row, "verdict": "yes"})


def test_training_gate_tolerates_a_few_rising_curves_only():
    t = seeds_table([0.6, 0.7], 0.0)
    flat = [0.2, 0.5, 0.7, 0.80, 0.81, 0.81, 0.81, 0.81]
    rising = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    ok = gates.training_gate(t, probe=None, chance=0.2, n_test=250,
                             curves=[flat] * 19 + [rising])
    assert ok["passes"] and ok["plateaued"] == pytest.approx(0.95)
    bad = gates.training_gate(t, probe=None, chance=0.2, n_test=250,
                              curves=[flat] * 8 + [rising] * 2)
    assert not bad["passes"] and "2 of 10 training curves still rising" in bad["reason"]
