"""`mlservice` (the console script) and `python -m mlservice`."""

import sys


def run() -> int:
    # Ctrl-C during the imports (a second or two) ends quietly, as it does once a command runs.
    try:
        from mlservice.cli import main
    except KeyboardInterrupt:
        return 130
    return main()


# Guarded: worker processes started with "spawn" import this module as __mp_main__.
if __name__ == "__main__":
    sys.exit(run())
