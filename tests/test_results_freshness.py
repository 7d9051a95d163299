"""A stored full run under results/<paper>/ must match today's full configuration."""
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
