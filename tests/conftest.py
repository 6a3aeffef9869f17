"""Shared test configuration: hypothesis profiles.

``ci`` (the default) has no per-example deadline, because timing belongs to benchmarks, and
is derandomized so that a CI run is reproducible; ``dev`` explores new random examples.
Select with ``HYPOTHESIS_PROFILE=dev``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=500, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
