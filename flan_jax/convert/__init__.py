"""Checkpoint conversion: Hugging Face T5 and T5X checkpoints in, Hugging Face out.

    python -m flan_jax.convert from-hf  HF_DIR OUT_DIR
    python -m flan_jax.convert from-t5x T5X_CHECKPOINT OUT_DIR [--gin_file=...] [--vocabulary=...]
    python -m flan_jax.convert to-hf    CHECKPOINT OUT_DIR [--gin_file=...]
    python -m flan_jax.convert check-hf HF_DIR [CHECKPOINT]

OUT_DIR of from-hf / from-t5x is an initial checkpoint (INITIAL_CHECKPOINT_PATH) with its
model gin file, see flan_jax.convert.checkpoint_io. Modules: naming (the one name mapping),
checkpoint_io (assembling a converted OUT_DIR; the checkpoint in it is written and read by
flan_jax.checkpointing, the one Orbax module), hf, t5x, __main__ (the CLI).
"""
