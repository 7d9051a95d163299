"""The command-line page: every ``--help`` text, produced by the CLI's own parser at build time.

``transfer_nb.cli.main([... "--help"])`` is called in this process (argparse prints and
exits), once for the program and once per subcommand; the subcommands are read from the
program's usage line, so a new subcommand appears without editing this file.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path


def help_text(argv: list[str]) -> str:
    """What ``transfer-nb ARGV --help`` prints (80 columns wide)."""
    from transfer_nb import cli

    out = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            try:
                cli.main([*argv, "--help"])
            except SystemExit as exc:
                if exc.code not in (0, None):
                    raise RuntimeError(f"transfer-nb {' '.join(argv)} --help exited {exc.code}")
            else:
                raise RuntimeError(f"transfer-nb {' '.join(argv)} --help did not exit")
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return out.getvalue()


def subcommands(main_help: str) -> list[str]:
    """The ``{a,b,c}`` choices of the program's usage line."""
    match = re.search(r"\{([a-z0-9_,-]+)\}", main_help)
    if not match:
        raise RuntimeError(f"no subcommands found in transfer-nb --help:\n{main_help}")
    return match.group(1).split(",")


def _block(text: str) -> list[str]:
    return [".. code-block:: text", ""] + [f"   {line}".rstrip() for line in text.splitlines()] + [""]


def write_cli(path: Path) -> list[str]:
    """Write the CLI page; return the subcommands it shows."""
    main_help = help_text([])
    subs = subcommands(main_help)
    lines = ["Command line", "============", "",
             "``pip install transfer-nb`` (or ``make setup`` in a checkout) installs the",
             "``transfer-nb`` command.  The texts below are its own ``--help`` output,",
             "generated when this site was built.", "",
             "``transfer-nb --help``", "-" * len("``transfer-nb --help``"), ""]
    lines += _block(main_help)
    for sub in subs:
        title = f"``transfer-nb {sub} --help``"
        lines += [title, "-" * len(title), ""] + _block(help_text([sub]))
    text = "\n".join(lines)
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return subs
