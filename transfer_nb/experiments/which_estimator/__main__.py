"""``python -m transfer_nb.experiments.which_estimator [--full | --confirm] [--save]
[--targets ...]``."""
import sys

from transfer_nb.experiments._cli import experiment_main

if __name__ == "__main__":
    sys.exit(experiment_main("which_estimator"))
