"""``python -m persafl_np ...`` and the ``persafl`` console script (:mod:`persafl_np.cli`)."""

import os
import sys


def run() -> None:
    """Run the command line and exit with its code; a Ctrl-C while it loads exits 130."""
    try:
        from persafl_np.cli import main
    except KeyboardInterrupt:
        sys.exit(130)
    code = main()
    if code == 130:
        # A handled Ctrl-C: exit 130 now. Left to the interpreter, `python -m` can end by the
        # signal itself once a KeyboardInterrupt was seen during an import (status -2, not 130).
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
