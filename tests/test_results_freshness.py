"""A stored full run under results/<paper>/ must match today's full configuration, and a
stored confirmation (results/<paper>/confirm/) and its pre-registration today's
``config("confirm")``."""
import importlib

import pytest

from transfer_nb.experiments import PAPERS, base


@pytest.mark.parametrize("paper", PAPERS)
def test_stored_full_run_is_fresh(paper):
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    stored = base.load_run(paper)
    if stored is None:
        pytest.skip(f"no stored full run of {paper}; create it with "
                    f"`python -m transfer_nb.experiments.{paper} --full --save`")
    for key in ("config_hash", "commit", "device", "date", "wall_clock_s", "versions", "mode"):
        assert key in stored.meta, f"results/{paper}/run.json lacks {key!r}"
    assert stored.meta["mode"] == "full"
    assert stored.meta["config_hash"] == pkg.config_hash(pkg.config("full")), (
        f"results/{paper}/ is stale: config('full') changed since it was stored; re-run "
        f"`python -m transfer_nb.experiments.{paper} --full --save`")


@pytest.mark.parametrize("paper", PAPERS)
def test_stored_confirmation_is_fresh(paper):
    from transfer_nb.experiments import confirm
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    pre = confirm.load_preregistration(paper)
    stored = base.load_run(paper, confirm=True)
    if pre is None and stored is None:
        pytest.skip(f"no pre-registered confirmation of {paper}")
    current = pkg.config_hash(pkg.config("confirm"))
    if pre is not None:
        assert pre["config_hash"] == current, (
            f"results/{paper}/confirm/preregistration.json no longer matches "
            f"config('confirm'): a pre-registered design must not change")
    if stored is not None:
        assert stored.meta["mode"] == "confirm"
        assert stored.meta["config_hash"] == current, (
            f"results/{paper}/confirm/ is stale: config('confirm') changed since it ran")
        assert stored.meta.get("preregistration_commit"), (
            f"results/{paper}/confirm/run.json names no pre-registration commit")
