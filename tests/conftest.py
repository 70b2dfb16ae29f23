"""Test-suite configuration: hypothesis profiles and shared fixtures.

Profiles
--------
``dev`` (default): randomized, 50 examples per property.
``ci`` (selected when the environment variable ``CI=true``): derandomized, so CI is
reproducible, with a bounded number of examples and no deadline (2 shared cores).
"""

from __future__ import annotations

import os

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
