"""A CPU launch prints only flan_jax's own lines; FLAN_JAX_VERBOSE=1 / --verbose shows all.

The banners below are what TensorFlow 2.21 and its CUDA stubs print on a CPU-only machine
(issue 11); the full train and eval launches of test_gin_entry.py / test_evaluation.py check
their stderr with assert_no_banners too.
"""
import os
import subprocess
import sys

import pytest

from flan_jax import console, launch

BANNERS = (
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "absl::InitializeLog",
    "This TensorFlow binary is optimized",
    'Item "data" was found in the checkpoint, but could not be restored',
    "CheckpointManagerOptions.read_only=True",
)


def assert_no_banners(stderr: str) -> None:
    shown = [b for b in BANNERS if b in stderr]
    assert not shown, f"{shown} in stderr:\n{stderr[-3000:]}"


def test_drop_banners_keeps_every_other_line():
    # Lines as TensorFlow prints them at import on this machine, around two of ours.
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to "
        "STDERR\n"
        "I0000 00:00:1796014519.069855   22758 port.cc:153] oneDNN custom operations are on. "
        "You may see slightly different numerical results due to floating-point round-off "
        "errors from different computation orders. To turn them off, set the environment "
        "variable `TF_ENABLE_ONEDNN_OPTS=0`.\n"
        "a line of ours\n"
        "I0000 00:00:1796014519.070317   22758 cudart_stub.cc:31] Could not find cuda drivers "
        "on your machine, GPU will not be used.\n"
        "I0000 00:00:1796014519.224651   22758 cpu_feature_guard.cc:227] This TensorFlow binary "
        "is optimized to use available CPU instructions in performance-critical operations.\n"
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
        "TensorFlow with the appropriate compiler flags.\n"
        "E0000 00:00:1796014589.819923   23316 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
        "E0000 00:00:1796014589.819923   23316 some_op.cc:52] a real TF error\n"
        "another line of ours\n")
    assert console.drop_banners(text) == (
        "a line of ours\n"
        "E0000 00:00:1796014589.819923   23316 some_op.cc:52] a real TF error\n"
        "another line of ours\n")


def _launch(*flags, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("TF_CPP_MIN_LOG_LEVEL", "FLAN_JAX_VERBOSE")}
    return subprocess.run(
        [sys.executable, "-m", "flan_jax.train", "--gin_file=gin_configs/local/mini_cpu.gin",
         *flags], cwd=launch.REPO_ROOT, env={**environ, **env}, capture_output=True,
        text=True, timeout=300)


def test_launch_is_quiet_and_verbose_brings_the_banners_back(tmp_path):
    # MODEL_DIR left unset: the launch imports everything, parses gin, and stops with our
    # message, so its stderr holds exactly what the imports printed plus that line.
    quiet = _launch()
    assert quiet.returncode == 2
    assert quiet.stderr.startswith("flan_jax.train: error: Required gin macro(s) not set: "
                                   "MODEL_DIR."), quiet.stderr[-3000:]
    assert_no_banners(quiet.stderr)
    for loud in (_launch(FLAN_JAX_VERBOSE="1"), _launch("--verbose")):
        assert loud.returncode == 2
        assert "absl::InitializeLog" in loud.stderr, loud.stderr[-3000:]
        assert "oneDNN custom operations are on" in loud.stderr


def test_expected_orbax_and_seqio_warnings_are_dropped_unless_verbose():
    import logging
    assert launch.parse_args(["--gin_file=a.gin", "--verbose"], "test").verbose
    assert not launch.parse_args(["--gin_file=a.gin"], "test").verbose or console.verbose()
    drop = launch._DropExpectedSeqioWarnings()

    def record(message):
        return logging.LogRecord("absl", logging.WARNING, __file__, 1, message, None, None)

    assert not drop.filter(record('Item "data" was found in the checkpoint, but could not be '
                                  'restored. Please provide a `CheckpointHandlerRegistry`.'))
    assert drop.filter(record("The data configuration changed since the checkpoint"))
