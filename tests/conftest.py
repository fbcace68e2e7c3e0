"""Test setup: 8 fake CPU devices, quiet TensorFlow, and the tiny test task (tests/tiny.py).

XLA_FLAGS must be set before jax is imported anywhere, hence at the top of conftest.
"""
import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

# Many tests compile the same tiny train step; a persistent cache shared by the test
# process and its subprocesses compiles each distinct program once per machine. The
# subprocesses (entry-point launches) inherit it through jax's environment variables.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ.get(
    "FLAN_JAX_TEST_COMPILE_CACHE", "/tmp/flan_jax_test_xla_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# The tests run JAX as the entry points do (flan_jax.cpu_runtime), before any computation.
from flan_jax import cpu_runtime  # noqa: E402

_runtime = cpu_runtime.configure()
assert _runtime.inline_dispatch, (f"{_runtime.describe()}: the tests expect the entry points' "
                                  "CPU runtime; run them without FLAN_JAX_CPU_DEFAULTS.")

import tiny  # noqa: E402,F401  (registers the test task)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tpu_compile: compiles for a TPU topology with libtpu on the CPU "
        "(`make test-tpu-compile`); skipped, with the reason, where libtpu is absent")
