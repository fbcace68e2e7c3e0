"""Parameter-efficient tuning (soft prompts, LoRA): what trains, how it starts, how it is stored.

The model side lives in flan_jax/models/t5.py (T5Config.prompt_length, lora_rank): a soft
prompt is the parameter 'encoder/prompt', LoRA adds 'lora_a' / 'lora_b' beside a projection's
'kernel'. This module holds the one rule for which parameters train:

  full fine-tuning (no prompt, no LoRA): every parameter trains;
  parameter-efficient: only leaves named in TRAINABLE_NAMES train, the rest is frozen.

A parameter-efficient run keeps only the trainable part in its TrainState (so the optimizer
state and every checkpoint hold just that) and passes the frozen base to the train step as a
separate, non-donated argument. Its run directory records where the frozen base came from
(BASE_POINTER_FILE); `restore_params` loads base + trainable together for eval, infer and
export. `merge_lora` folds LoRA into plain T5 kernels for export.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping, Sequence

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.models import t5

TRAINABLE_NAMES = ("prompt", "lora_a", "lora_b")
# Written into MODEL_DIR by a parameter-efficient run: the step directory of its frozen base.
BASE_POINTER_FILE = "peft_base.json"
# Sampled-vocabulary prompt init draws from the first rows of the embedding table: in a
# SentencePiece vocabulary those are the most frequent pieces (T5X prompt tuning's gin uses
# a population of 5000 as well).
PROMPT_INIT_POPULATION = 5000


def is_peft(config: t5.T5Config) -> bool:
    """True when the config asks for a soft prompt or LoRA (the base is then frozen)."""
    return config.prompt_length > 0 or config.lora_rank > 0


def is_trainable(path: Sequence[str], config: t5.T5Config) -> bool:
    """The one predicate: does the parameter at `path` (e.g. ('encoder', 'prompt')) train?"""
    return not is_peft(config) or path[-1] in TRAINABLE_NAMES


def split(params: Mapping[str, Any], config: t5.T5Config) -> tuple[dict, dict]:
    """A parameter tree (or a tree of shapes / specs of the same structure) ->
    (trainable, frozen), two nested dicts that `merge` puts back together.

    For full fine-tuning the frozen part is empty.
    """
    flat = flax.traverse_util.flatten_dict(dict(params))
    trainable = {k: v for k, v in flat.items() if is_trainable(k, config)}
    frozen = {k: v for k, v in flat.items() if not is_trainable(k, config)}
    return (flax.traverse_util.unflatten_dict(trainable),
            flax.traverse_util.unflatten_dict(frozen))


def merge(trainable: Mapping[str, Any], frozen: Mapping[str, Any]) -> dict:
    """Inverse of `split`: one parameter tree holding both parts."""
    flat = flax.traverse_util.flatten_dict(dict(frozen))
    flat.update(flax.traverse_util.flatten_dict(dict(trainable)))
    return flax.traverse_util.unflatten_dict(flat)


def count(tree: Any) -> int:
    """Number of scalars in a tree of arrays or shapes."""
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


# ---------------------------------------------------------------------------- prompt init
def initial_prompt(embedding: jax.Array, config: t5.T5Config, rng: jax.Array,
                   vocabulary: Any = None) -> jax.Array:
    """The soft prompt's starting value, float32 [prompt_length, emb_dim].

    As in Lester et al. 2021: row i is the mean embedding of the tokens of
    config.prompt_init_texts[i] (class-label init; `vocabulary` encodes the texts); the other
    rows are rows of the embedding table [vocab, emb_dim] drawn without replacement from its
    first PROMPT_INIT_POPULATION entries (with replacement when the prompt is longer).
    """
    length, population = config.prompt_length, min(PROMPT_INIT_POPULATION, embedding.shape[0])
    embedding = jnp.asarray(embedding, jnp.float32)
    index = jax.random.choice(rng, population, (length,), replace=length > population)
    prompt = jnp.take(embedding, index, axis=0)
    if config.prompt_init_texts:
        if vocabulary is None:
            raise ValueError("T5Config.prompt_init_texts (class-label prompt init) needs the "
                             "task's vocabulary to encode the texts.")
        for i, text in enumerate(config.prompt_init_texts):
            ids = [t for t in vocabulary.encode(text) if 0 < t < embedding.shape[0]]
            if not ids:
                raise ValueError(f"T5Config.prompt_init_texts[{i}]={text!r} encodes to no "
                                 "token; give a non-empty label text.")
            prompt = prompt.at[i].set(jnp.take(embedding, jnp.asarray(ids), axis=0).mean(0))
    return prompt


# ---------------------------------------------------------------------------- LoRA merge
def merge_lora(params: Mapping[str, Any], config: t5.T5Config
               ) -> tuple[dict, t5.T5Config]:
    """Folds every LoRA pair into its kernel: kernel + lora_scale * lora_a @ lora_b.

    Returns (params, config) of a plain T5 (lora_rank 0) with the same outputs, on the host
    in float32. A soft prompt cannot be folded into T5's weights, so a prompt-tuned model is
    refused here with the reason.
    """
    check_exportable(config.prompt_length)
    return fold_lora(params, config.lora_scale), plain_config(config)


def check_exportable(prompt_length: int) -> None:
    """A soft prompt has no place in a plain T5 checkpoint: refuse with the reason."""
    if prompt_length:
        raise ValueError(
            f"This model has a soft prompt (prompt_length={prompt_length}); a plain T5 "
            "checkpoint has no place for it, so it cannot be exported as one. Evaluate or "
            "run inference with flan_jax itself (it loads base + prompt together).")


def fold_lora(params: Mapping[str, Any], lora_scale: float) -> dict:
    """Nested params -> float32 host params with each kernel += lora_scale * lora_a @ lora_b
    and the LoRA factors removed (a tree without LoRA comes back unchanged, on the host).
    Scanned stacks (t5.T5Config.scan_layers) fold layer by layer along PARAM_SCAN_AXIS."""
    flat = flax.traverse_util.flatten_dict(dict(params))
    merged = {}
    for path, value in flat.items():
        if path[-1] in ("lora_a", "lora_b"):
            continue
        value = np.asarray(jax.device_get(value), np.float32)
        if path[-1] == "kernel" and path[:-1] + ("lora_a",) in flat:
            a = np.asarray(jax.device_get(flat[path[:-1] + ("lora_a",)]), np.float32)
            b = np.asarray(jax.device_get(flat[path[:-1] + ("lora_b",)]), np.float32)
            if a.ndim == 3:  # scanned layers: [in, layers, rank] x [rank, layers, out]
                value = value + np.float32(lora_scale) * np.einsum("ilr,rlo->ilo", a, b)
            else:
                value = value + np.float32(lora_scale) * (a @ b)
        merged[path] = value
    return flax.traverse_util.unflatten_dict(merged)


def plain_config(config: t5.T5Config) -> t5.T5Config:
    """The same T5 without a prompt or LoRA (what a LoRA merge leaves)."""
    defaults = t5.T5Config()
    return dataclasses.replace(config, prompt_length=0, prompt_init_texts=(), lora_rank=0,
                               lora_alpha=None, lora_targets=defaults.lora_targets)


# ---------------------------------------------------------------------------- base pointer
def write_base_pointer(model_dir: str, base_step_dir: str, config: t5.T5Config) -> None:
    """Records in MODEL_DIR which checkpoint step holds the frozen base, and the prompt /
    LoRA settings an export needs (lora_scale is not recoverable from shapes)."""
    if jax.process_index() != 0:
        return
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, BASE_POINTER_FILE)
    record = {"base_checkpoint": base_step_dir, "prompt_length": config.prompt_length,
              "lora_rank": config.lora_rank, "lora_scale": config.lora_scale}
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".tmp", path)


def read_run_record(model_dir: str) -> dict[str, Any] | None:
    """What write_base_pointer recorded in MODEL_DIR, or None (not a prompt / LoRA run)."""
    path = os.path.join(model_dir, BASE_POINTER_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_base_pointer(model_dir: str) -> str | None:
    """The frozen base's step directory recorded in MODEL_DIR, or None if there is none."""
    record = read_run_record(model_dir)
    return None if record is None else record["base_checkpoint"]


def check_launch(config: t5.T5Config, base_checkpoint: str | None) -> None:
    """Refuses a parameter-efficient launch that cannot work, before anything is written.

    base_checkpoint: INITIAL_CHECKPOINT_PATH, or the base recorded by an earlier run.
    """
    if not is_peft(config):
        return
    if not base_checkpoint:
        raise ValueError(
            "Prompt tuning and LoRA freeze a trained model, so they need its checkpoint: set "
            "INITIAL_CHECKPOINT_PATH to the base model (a run directory, its checkpoints/ "
            "directory, a step directory, or a flan_jax.convert output). Without a prompt or "
            "LoRA (T5Config.prompt_length = lora_rank = 0) the whole model trains instead.")
