"""Container entrypoint: run the action from the runner's `INPUT_*` variables."""

import sys

from restart.cli import main_action

if __name__ == "__main__":
    sys.exit(main_action())
