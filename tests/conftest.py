"""Test setup: 8 fake CPU devices, quiet TensorFlow, and the tiny test task (tests/tiny.py).

XLA_FLAGS must be set before jax is imported anywhere, hence at the top of conftest.
"""
import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import tiny  # noqa: E402,F401  (registers the test task)
