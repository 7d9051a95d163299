"""The migration that proves the fields equal: the configs that train sources embed one
``zoo.SourceTraining`` block (issue 35), and no stored run's config hash moved.

Every hash stored under ``results/`` (the exploratory ``run.json`` and the confirmation's
``preregistration.json`` and ``run.json``) is recomputed from today's presets, and each
pre-registration's frozen config (stored as plain data) equals today's flat fields."""
import dataclasses
import importlib
import json

import pytest

from transfer_nb.experiments import PAPERS, base, confirm, zoo

#: the configs' field names before SourceTraining was embedded (flat, as hashed)
BEFORE = {
    "transrate": ["mode", "targets", "sources", "degenerate", "arch", "width", "depth",
                  "image_size", "source_epochs", "source_lr", "source_batch_size", "head_init",
                  "epochs", "batch_size", "lr_grid", "recipe_models", "validation_fraction",
                  "seeds", "eps", "projected_eps", "layer_cases", "layer_width",
                  "layer_blocks", "layer_seeds", "pretrained", "pretrained_image_size",
                  "n_boot", "primary", "draw_seed"],
    "regression": ["mode", "targets", "sources", "columns", "degenerate", "arch", "width",
                   "depth", "image_size", "source_epochs", "source_lr", "source_batch_size",
                   "n_train", "n_test", "head_init", "epochs", "batch_size", "lr_grid",
                   "recipe_models", "validation_fraction", "seeds", "alpha", "cv_grid",
                   "lambdas", "timing_repeats", "n_boot", "data_seed", "jobs", "primary"],
    "pge": ["mode", "tasks", "targets", "sources", "degenerate", "arch", "width", "depth",
            "image_size", "n_source", "source_epochs", "source_lr", "source_batch_size",
            "per_class", "n_test", "head_init", "epochs", "batch_size", "lr_grid",
            "recipe_models", "validation_fraction", "seeds", "n_pge", "restarts",
            "pge_batch_size", "seed", "stability_pairs", "stability_seeds",
            "stability_restarts", "stability_batches", "n_boot", "primary", "train_draw"],
}


def _stored_hashes(paper):
    """(file, mode, stored hash) of every run and pre-registration stored for ``paper``."""
    folder = base.results_dir(paper)
    out = []
    for path, mode in ((folder / "run.json", "full"),
                       (folder / "confirm" / "preregistration.json", "confirm"),
                       (folder / "confirm" / "run.json", "confirm")):
        if path.exists():
            out.append((path, mode, json.loads(path.read_text())["config_hash"]))
    return out


@pytest.mark.parametrize("paper", PAPERS)
def test_every_stored_hash_is_recomputed_unchanged(paper):
    stored = _stored_hashes(paper)
    if paper in BEFORE:   # the three papers whose configs moved hold all three files
        assert len(stored) == 3, [str(p) for p, _, _ in stored]
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    for path, mode, want in stored:
        assert pkg.config_hash(pkg.config(mode)) == want, str(path)


@pytest.mark.parametrize("paper", sorted(BEFORE))
def test_preregistered_config_equals_todays_flat_fields(paper):
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    pre = confirm.load_preregistration(paper)
    cfg = pkg.config("confirm")
    assert confirm._plain(base.flat_fields(cfg)) == pre["config"]
    assert isinstance(cfg.training, zoo.SourceTraining)


@pytest.mark.parametrize("paper", sorted(BEFORE))
def test_flat_fields_keep_the_names_of_before(paper):
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    for mode in ("fast", "full", "confirm"):
        cfg = pkg.config(mode)
        flat = base.flat_fields(cfg)
        late = {f.name for f in dataclasses.fields(cfg) if f.metadata.get("late")}
        assert set(flat) | late == set(BEFORE[paper])
        for name in zoo.TRAINING_FIELDS:     # read through the config, as before
            assert getattr(cfg, name) == getattr(cfg.training, name) == flat[name]


def test_replace_routes_training_fields_and_refuses_unknown_ones():
    from transfer_nb.experiments import transrate
    cfg = transrate.config("fast")
    new = zoo.replace(cfg, seeds=(5,), width=8, n_boot=7)
    assert (new.seeds, new.width, new.n_boot) == ((5,), 8, 7)
    assert new.training == dataclasses.replace(cfg.training, seeds=(5,), width=8)
    assert transrate.config("fast", seeds=(5,)).training.seeds == (5,)
    assert transrate.config_hash(new) != transrate.config_hash(cfg)
    with pytest.raises(ValueError, match="no field"):
        zoo.replace(cfg, widht=8)


def test_training_of_reads_a_config_that_does_not_embed_one():
    @dataclasses.dataclass(frozen=True)
    class Old:
        width: int = 4
        seeds: tuple = (9,)
    t = zoo.training_of(Old())
    assert (t.width, t.seeds, t.depth) == (4, (9,), zoo.SourceTraining().depth)
    with pytest.raises(ValueError, match="SourceTraining"):
        zoo.training_of(object())


def test_an_embedded_block_may_not_repeat_a_parent_field():
    @dataclasses.dataclass(frozen=True)
    class Bad:
        width: int = 3
        training: zoo.SourceTraining = base.embedded(zoo.SourceTraining())
    with pytest.raises(ValueError, match="repeats fields"):
        base.flat_fields(Bad())
    with pytest.raises(TypeError, match="repeats SourceTraining"):
        zoo.trains_sources(Bad)


def test_recipe_sources_leave_out_untrained_and_declared_models():
    S = base.SourceSpec
    zoo_ = (S("random-init", "d", 0), S("a", "d", 3), S("b", "d", 3), S("c", "d", 3),
            S("bad", "d", 3))
    picked = zoo.recipe_sources(zoo_, (("bad", "out"), ("random-init", "in")), 2)
    assert [s.name for s in picked] == ["a", "c"]
    with pytest.raises(ValueError, match="no trained source"):
        zoo.recipe_sources(zoo_[:1], (), 2)
