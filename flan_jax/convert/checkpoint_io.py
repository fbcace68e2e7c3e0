"""Writing a converted checkpoint (and reading a flan_jax one back), shared by all converters.

A converted OUT_DIR looks like

    OUT_DIR/checkpoints/0/state   Orbax (StandardSave) of {'params': <T5X-named tree>}
    OUT_DIR/model.gin             the model gin file (T5Config) matching those params
    OUT_DIR/spiece.model          the source's SentencePiece model, when it has one
    OUT_DIR/conversion.json       where it came from

and is meant for INITIAL_CHECKPOINT_PATH (flan_jax.checkpointing.load_initial_params takes
only the params of a run/checkpoints/step directory; every read and write goes through
flan_jax.checkpointing). It holds no optimizer state and no data
position, so it is not a run directory to resume: give training a new MODEL_DIR.

Nothing is ever half-written: everything goes to a temporary sibling of OUT_DIR, renamed to
OUT_DIR only when complete, and an existing non-empty OUT_DIR is refused.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator, Mapping, Sequence

import jax
import numpy as np

from flan_jax import checkpointing
from flan_jax.models import t5

MODEL_GIN = "model.gin"
VOCABULARY_FILE = "spiece.model"

# Macros a model gin file refers to; bound here so a model file parses on its own.
_RUN_MACRO_DEFAULTS = ("DROPOUT_RATE = 0.0", "ACTIVATION_DTYPE = 'float32'",
                       "REMAT_POLICY = 'none'")


@contextlib.contextmanager
def atomic_output_dir(out_dir: str) -> Iterator[str]:
    """Yields a fresh temporary directory that becomes `out_dir` if the block succeeds.

    Refuses an `out_dir` that exists and is not empty. On any error the temporary directory
    is removed and `out_dir` is left as it was.
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise FileExistsError(f"Output directory {out_dir} exists and is not empty; give a new "
                              "path (conversions never overwrite).")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    # A sibling, so the final rename stays on one filesystem.
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.tmp-", dir=parent)
    try:
        yield tmp
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty, checked above
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def host_array(array: np.ndarray) -> jax.Array:
    """One converted tensor as a float32 jax.Array on the host CPU.

    Converters hand each tensor over as soon as it is read: Orbax then saves from these
    buffers without staging another host copy of the model (with numpy leaves it did, about
    doubling the peak), and the host CPU always has room where one accelerator may not.
    """
    return jax.device_put(np.asarray(array, dtype=np.float32), jax.devices("cpu")[0])


def model_gin_text(config: t5.T5Config, source: str,
                   vocabulary_path: str | None = None) -> str:
    """A model gin file in the format of gin_configs/models/*/*.gin for `config`."""
    kind = ("T5 v1.0 style: ReLU MLP, output layer tied to the input embedding"
            if config.logits_via_embedding else
            "T5 v1.1 / LM-adapted / Flan-T5 style: gated MLP, untied output layer")
    lines = [
        f"# Converted from {source}",
        f"# {kind}; {config.num_params():,} params.",
        "# Include first, then a run file (gin_configs/runs/finetune.gin), and set",
        "# INITIAL_CHECKPOINT_PATH to the directory holding this file.",
        "from __gin__ import dynamic_registration",
        "from flan_jax.models import t5",
        "",
        "# True: each stack runs as one nn.scan over its layers (this checkpoint loads",
        "# either way).",
        "SCAN_LAYERS = False",
        "",
        "MODEL_CONFIG = @t5.T5Config()",
        "t5.T5Config:",
    ]
    for field in ("vocab_size", "emb_dim", "num_heads", "num_encoder_layers",
                  "num_decoder_layers", "head_dim", "mlp_dim"):
        lines.append(f"  {field} = {getattr(config, field)}")
    lines.append(f"  mlp_activations = {tuple(config.mlp_activations)!r}")
    lines.append(f"  logits_via_embedding = {config.logits_via_embedding}")
    lines.append(f"  relative_attention_num_buckets = {config.relative_attention_num_buckets}")
    lines.append(f"  relative_attention_max_distance = {config.relative_attention_max_distance}")
    if config.relpos_per_layer:
        lines.append("  relpos_per_layer = True")
    lines += ["  dropout_rate = %DROPOUT_RATE", "  dtype = %ACTIVATION_DTYPE",
              "  remat_policy = %REMAT_POLICY", "  scan_layers = %SCAN_LAYERS"]
    if vocabulary_path is not None:
        lines += ["", "# The checkpoint's own SentencePiece model (flan_jax.vocabularies).",
                  f"VOCABULARY_PATH = {vocabulary_path!r}"]
    return "\n".join(lines) + "\n"


def write_converted(tmp_dir: str, final_dir: str, params: Mapping[str, Any],
                    config: t5.T5Config, source: str,
                    vocabulary_file: str | None = None) -> None:
    """Fills `tmp_dir` (to become `final_dir`) with checkpoint, model.gin and vocabulary."""
    checkpointing.save_params(tmp_dir, params)
    vocabulary_path = None
    if vocabulary_file is not None:
        shutil.copyfile(vocabulary_file, os.path.join(tmp_dir, VOCABULARY_FILE))
        vocabulary_path = os.path.join(os.path.abspath(final_dir), VOCABULARY_FILE)
    with open(os.path.join(tmp_dir, MODEL_GIN), "w") as f:
        f.write(model_gin_text(config, source, vocabulary_path))
    with open(os.path.join(tmp_dir, "conversion.json"), "w") as f:
        json.dump({"source": source, "num_params": config.num_params(),
                   "use_as": "INITIAL_CHECKPOINT_PATH (not a MODEL_DIR to resume)"}, f,
                  indent=2)


def config_from_gin(gin_files: Sequence[str]) -> t5.T5Config:
    """The T5Config bound by model gin file(s); run-file macros get neutral defaults.

    Uses (and clears) gin's global config: for the converter CLI and tests, not for a
    process that is in the middle of a gin-configured run.
    """
    import gin

    from flan_jax import launch
    for path in gin_files:
        if not os.path.isfile(path) and not os.path.isfile(os.path.join(launch.REPO_ROOT, path)):
            raise FileNotFoundError(f"--gin_file {path!r} not found.")
    gin.clear_config()
    gin.add_config_file_search_path(launch.REPO_ROOT)
    try:
        gin.parse_config_files_and_bindings(list(gin_files), list(_RUN_MACRO_DEFAULTS),
                                            finalize_config=False)
        config = gin.get_configurable(t5.T5Config)()
    finally:
        gin.clear_config()
    return config
