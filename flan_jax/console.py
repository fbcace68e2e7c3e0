"""A quiet console: TensorFlow's start-up banners are dropped, everything else still shows.

Importing TensorFlow (which seqio needs for data) prints, through C++ logging that
TF_CPP_MIN_LOG_LEVEL no longer reaches (absl logging before absl::InitializeLog), lines such
as "oneDNN custom operations are on", "Could not find cuda drivers on your machine" and
"This TensorFlow binary is optimized to use available CPU instructions"; hiding the GPU from
TF (JAX owns the accelerators) then prints "failed call to cuInit" on a machine without one.
None of them concerns a flan_jax user. They are written straight to file descriptor 2, so
the only way to filter them is at that level: `import_tensorflow()` points fd 2 at a
temporary file while TF loads, then writes back every line that is not one of those banners
(an unexpected warning or an import error still reaches the terminal).

TF_CPP_MIN_LOG_LEVEL defaults to 2 (errors only), which TF's logging after start-up still
honours. Nothing is changed about TF's behaviour (TF_ENABLE_ONEDNN_OPTS, which would change
the numerics of TF ops, is left alone): only what is printed.

FLAN_JAX_VERBOSE=1 in the environment, or --verbose on an entry point's command line, turns
every filter off (here and in flan_jax.launch).
"""
from __future__ import annotations

import os
import re
import sys
import tempfile

# Lines of native start-up logging that say nothing actionable to a flan_jax user.
_BANNERS = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR$"
    r"|^[IWE]\d{4} [\d:. ]+\d+ \S+\] ("
    r"oneDNN custom operations are on"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|TF-TRT Warning: Could not find TensorRT)"
    # The second line of the CPU-instructions notice.
    r"|^To enable the following instructions: .* in other operations, rebuild TensorFlow "
    r"with the appropriate compiler flags\.$")


def verbose() -> bool:
    """True when the user asked to see every log line (FLAN_JAX_VERBOSE=1 or --verbose)."""
    return (os.environ.get("FLAN_JAX_VERBOSE", "") not in ("", "0")
            or "--verbose" in sys.argv[1:])


def drop_banners(text: str) -> str:
    """`text` without the lines that are start-up banners (see _BANNERS)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not _BANNERS.match(line.rstrip("\n")))


def import_tensorflow():
    """Imports TensorFlow with its GPU hidden (JAX owns the accelerators), banners dropped.

    Returns the tensorflow module. Safe to call many times; only the first does work.
    """
    if not verbose():
        # TF's runtime C++ logging (after start-up) still honours this: errors only.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or verbose():
        import tensorflow as tf
        _hide_gpu_from(tf)
        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            _hide_gpu_from(tf)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = drop_banners(captured.read().decode("utf-8", errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()
    return tf


def _hide_gpu_from(tf) -> None:
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # devices already initialised (TF used before): nothing to change
        pass


# Importing this module is what makes TensorFlow load quietly: entry points import it before
# anything that imports TensorFlow (seqio, flan_jax.data, ...).
import_tensorflow()
