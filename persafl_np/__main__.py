"""``python -m persafl_np ...`` is the ``persafl`` command (:mod:`persafl_np.cli`)."""

import sys

from persafl_np.cli import main

sys.exit(main())
