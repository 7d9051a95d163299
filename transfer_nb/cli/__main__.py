"""``python -m transfer_nb.cli``: the ``transfer-nb`` command."""
import sys

from transfer_nb.cli import main

if __name__ == "__main__":
    sys.exit(main())
