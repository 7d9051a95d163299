"""The stored full run under results/ must match today's full configuration."""
import json
from pathlib import Path

import pytest

from transfer_nb.experiments import transrate as E

ROOT = Path(__file__).resolve().parents[1]


def test_stored_transrate_full_run_is_fresh():
    csv = ROOT / E.RESULTS_CSV
    if not csv.exists():
        pytest.skip(f"no stored full run ({E.RESULTS_CSV}); create it with "
                    "`python -m transfer_nb.experiments.transrate --full --save`")
    side = csv.with_suffix(".json")
    assert side.exists(), f"{csv.name} has no JSON sidecar {side.name}"
    meta = json.loads(side.read_text())
    for key in ("config_hash", "commit", "device", "date"):
        assert key in meta, f"sidecar lacks {key!r}"
    assert meta["config_hash"] == E.config_hash(E.config(fast=False)), (
        "results/transrate_model_selection.csv is stale: config(fast=False) changed since it "
        "was stored; re-run `python -m transfer_nb.experiments.transrate --full --save`")
