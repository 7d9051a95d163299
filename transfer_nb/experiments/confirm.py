"""Pre-registered confirmation runs (DESIGN rule 6: exploratory runs find, confirmatory
runs test).

A paper with a confirmation has a third preset, ``config("confirm")`` (new seeds, at
least two targets no earlier run or pilot touched), and a plan ``CONFIRM_PLAN`` in its
``presets`` module: the primary claim and every secondary claim with its rule, the
exclusions with their reasons and what the earlier runs used.  Before the run:

1. ``python -m transfer_nb.experiments.confirm write <paper>`` writes
   ``results/<paper>/confirm/preregistration.json`` (:func:`preregistration`: the frozen
   config as plain data, its hash, the plan, the targets and seeds);
2. that file is committed in a commit of its own;
3. ``python -m transfer_nb.experiments.<paper> --confirm --save`` refuses to run unless
   the committed pre-registration's hash is the config's (:func:`check_preregistration`)
   and stores the run under ``results/<paper>/confirm/`` with ``preregistration_commit``
   in its ``run.json``.

``tests/test_confirmations.py`` checks that every stored confirmation's pre-registration
commit is an ancestor of (and not) the commit that added its ``run.json``.

* :func:`papers` -- the papers with a confirmation preset.
* :func:`preregistration`, :func:`write_preregistration`, :func:`preregistration_path`.
* :func:`preregistration_commit`, :func:`check_preregistration` -- git facts and checks.
* :func:`restrict`, :func:`new_target_verdicts` -- a run cut down to some targets, and the
  verdicts on the new targets only (a secondary of every confirmation).
"""
from __future__ import annotations

import dataclasses
import datetime
import importlib
import json
import subprocess
import sys
from pathlib import Path

from transfer_nb.experiments.base import CONFIRM, _repo_root, results_dir
from transfer_nb.cache import atomic_write_bytes

__all__ = ["papers", "plan", "preregistration", "preregistration_path",
           "write_preregistration", "load_preregistration", "preregistration_commit",
           "check_preregistration", "git", "restrict", "new_target_verdicts", "main"]

#: every paper package of the experiment contract
ALL_PAPERS = ("transrate", "head2toe", "regression", "adversarial", "pge", "which_estimator")
#: what a plan (``presets.CONFIRM_PLAN``) must hold
PLAN_KEYS = ("primary", "secondary", "exclusions", "earlier", "new_targets")


def _pkg(paper: str):
    if paper not in ALL_PAPERS:
        raise ValueError(f"unknown paper {paper!r}: expected one of {list(ALL_PAPERS)}")
    return importlib.import_module(f"transfer_nb.experiments.{paper}")


def papers() -> tuple:
    """The papers whose ``presets`` module holds a confirmation plan (``CONFIRM_PLAN``)."""
    return tuple(p for p in ALL_PAPERS if plan(p) is not None)


def plan(paper: str) -> dict | None:
    """The confirmation plan of ``paper`` (``presets.CONFIRM_PLAN``), None when it has none.

    Raises
    ------
    ValueError
        The plan lacks one of :data:`PLAN_KEYS`.
    """
    presets = importlib.import_module(f"transfer_nb.experiments.{paper}.presets")
    out = getattr(presets, "CONFIRM_PLAN", None)
    if out is None:
        return None
    missing = [k for k in PLAN_KEYS if k not in out]
    if missing:
        raise ValueError(f"{paper}.presets.CONFIRM_PLAN lacks {missing} (expected {list(PLAN_KEYS)})")
    return out


def _plain(value):
    """JSON-safe plain data: tuples as lists, dataclasses as dicts, paths as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _target_names(cfg) -> list:
    targets = getattr(cfg, "targets", ())
    return [t if isinstance(t, str) else t.name for t in targets]


def preregistration(paper: str) -> dict:
    """The pre-registration of ``paper``'s confirmation: ``config("confirm")`` as plain
    data with its ``config_hash`` and ``describe`` text, the plan (primary and secondary
    claims with their rules, exclusions with reasons, what earlier runs used, the new
    targets), the targets and seeds, and the command that runs it."""
    pkg = _pkg(paper)
    the_plan = plan(paper)
    if the_plan is None:
        raise ValueError(f"{paper} has no confirmation plan (presets.CONFIRM_PLAN)")
    cfg = pkg.config(CONFIRM)
    return {"paper": paper, "config_hash": pkg.config_hash(cfg),
            "version": getattr(importlib.import_module(
                f"transfer_nb.experiments.{paper}.presets"), "VERSION", None),
            "primary": {"claim": cfg.primary, **_plain(the_plan["primary"])},
            "secondary": _plain(the_plan["secondary"]),
            "targets": _target_names(cfg), "new_targets": _plain(the_plan["new_targets"]),
            "seeds": _plain(cfg.seeds), "exclusions": _plain(the_plan["exclusions"]),
            "earlier": _plain(the_plan["earlier"]),
            "notes": _plain(the_plan.get("notes", [])),
            "command": (f"flock /tmp/cpu.lock env PYTHONPATH=. python -m "
                        f"transfer_nb.experiments.{paper} --confirm --save > "
                        f"results/{paper}/confirm/run.log 2>&1"),
            "describe": pkg.describe(cfg), "config": _plain(cfg),
            "written": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds")}


def preregistration_path(paper: str, root=None) -> Path:
    """``results/<paper>/confirm/preregistration.json``."""
    return results_dir(paper, root, confirm=True) / "preregistration.json"


def load_preregistration(paper: str, root=None) -> dict | None:
    """The stored pre-registration of ``paper`` (None when there is none)."""
    path = preregistration_path(paper, root)
    if not path.exists():
        return None
    try:
        out = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}"
                         ) from None
    if not isinstance(out, dict) or "config_hash" not in out:
        raise ValueError(f"{str(path)!r} holds no pre-registration (no config_hash)")
    return out


def git(root, *args) -> str | None:
    """Output of ``git <args>`` in ``root`` (stripped), None when git or the repository
    is not there or the command fails."""
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _root(root) -> Path:
    return Path(root) if root is not None else _repo_root()


def preregistration_commit(paper: str, root=None) -> str | None:
    """The commit that added ``paper``'s pre-registration (its first appearance in the
    history), None when it was never committed or there is no git history."""
    root = _root(root)
    rel = preregistration_path(paper, root).relative_to(root)
    out = git(root, "log", "--diff-filter=A", "--format=%H", "--", str(rel))
    return out.splitlines()[-1] if out else None


def check_preregistration(paper: str, cfg_hash: str, root=None) -> str:
    """The commit of ``paper``'s pre-registration, after checking that it exists, is
    committed as it is on disk, and holds ``cfg_hash`` (the confirm config's hash).

    Raises
    ------
    ValueError
        Saying which of the three fails and what to do.
    """
    root = _root(root)
    path = preregistration_path(paper, root)
    pre = load_preregistration(paper, root)
    if pre is None:
        raise ValueError(f"no pre-registration at {str(path)!r}: write it with `python -m "
                         f"transfer_nb.experiments.confirm write {paper}` and commit it (alone) "
                         f"before the confirmation runs")
    if pre["config_hash"] != cfg_hash:
        raise ValueError(f"the pre-registration of {paper} holds config hash "
                         f"{pre['config_hash'][:12]}, but config('confirm') hashes to "
                         f"{cfg_hash[:12]}: the design changed after it was pre-registered")
    rel = str(path.relative_to(root))
    commit = preregistration_commit(paper, root)
    dirty = git(root, "status", "--porcelain", "--", rel)
    if commit is None or dirty is None or dirty:
        raise ValueError(f"the pre-registration {rel} is not committed as it is on disk: "
                         f"commit it (in a commit of its own) before the confirmation runs")
    return commit


def write_preregistration(paper: str, root=None, force: bool = False) -> Path:
    """Write ``results/<paper>/confirm/preregistration.json``.  A pre-registration that
    is already committed is never overwritten (``force`` only replaces an uncommitted
    one), so the design cannot change after it was registered."""
    path = preregistration_path(paper, root)
    if path.exists():
        if preregistration_commit(paper, _root(root)) is not None:
            raise ValueError(f"{str(path)!r} is committed: a pre-registration is written once "
                             f"(a new design needs a new confirmation folder and new seeds)")
        if not force:
            raise ValueError(f"{str(path)!r} exists (uncommitted): pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(preregistration(paper), indent=2) + "\n").encode())
    return path


def restrict(results, targets):
    """A copy of ``results`` with only ``targets`` (names): every table's rows with a
    ``target`` column filtered, and the config's ``targets`` cut down alike (for a
    secondary claim on the new targets only)."""
    keep = set(targets)
    tables = {k: (t[t["target"].isin(keep)].reset_index(drop=True) if "target" in t else t)
              for k, t in results.tables.items()}
    table = results.table[results.table["target"].isin(keep)].reset_index(drop=True)
    cfg = results.cfg
    if cfg is not None:
        cfg = dataclasses.replace(cfg, targets=tuple(
            t for t in cfg.targets if (t if isinstance(t, str) else t.name) in keep))
    return type(results)(results.paper, table, tables, dict(results.meta), cfg)


def new_target_verdicts(paper: str, results, n_boot: int | None = None):
    """``report.verdicts`` of ``results`` on the plan's new targets only (a pre-registered
    secondary of every confirmation: the claims where nothing was seen before)."""
    new = plan(paper)["new_targets"]
    return _pkg(paper).report.verdicts(restrict(results, list(new)), n_boot)


def main(argv=None) -> int:
    """``python -m transfer_nb.experiments.confirm write|show PAPER [--force]``."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m transfer_nb.experiments.confirm")
    parser.add_argument("action", choices=("write", "show"))
    parser.add_argument("paper", choices=ALL_PAPERS)
    parser.add_argument("--force", action="store_true",
                        help="replace an uncommitted pre-registration")
    args = parser.parse_args(argv)
    try:
        if args.action == "write":
            print("wrote", write_preregistration(args.paper, force=args.force))
        else:
            print(json.dumps(preregistration(args.paper), indent=2))
    except ValueError as exc:
        print(f"{parser.prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":   # pragma: no cover - the command line
    raise SystemExit(main())
