"""The one place that knows how flan_jax (T5X) parameter names map to Hugging Face T5 names.

flan_jax parameters are named as in T5X ("encoder/layers_0/attention/query/kernel"), written
here as "/"-joined paths. A Hugging Face T5ForConditionalGeneration stores the same tensors
under PyTorch names ("encoder.block.0.layer.0.SelfAttention.q.weight"). Every mapped tensor
is either copied as is (layer-norm scales) or transposed (2-D):
  - Dense kernels are [in, out] in flax and [out, in] in torch.nn.Linear;
  - the relative position table is [heads, buckets] here, [buckets, heads] in HF;
  - the token embedding is [vocab, emb] on both sides (no transpose).
No rescaling is needed anywhere: T5X folds 1/sqrt(head_dim) into the query kernel's
initialisation and HF T5 does not scale attention logits either, so query kernels match.

This module also infers a T5Config from a parameter tree's shapes, for checkpoints that come
without a config (a flan_jax or T5X checkpoint).
"""
from __future__ import annotations

import dataclasses
import functools
import re
from typing import Mapping

import flax.linen

from flan_jax import checkpointing
from flan_jax.models import t5

# flan_jax attention module names -> HF (decoder block, layer index, HF module name).
_ATTENTION_PROJECTIONS = (("query", "q"), ("key", "k"), ("value", "v"), ("out", "o"))


@dataclasses.dataclass(frozen=True)
class HfTensor:
    """Where one flan_jax parameter lives in a Hugging Face T5 state dict.

    Attributes:
      name: the HF (PyTorch) tensor name.
      transpose: the 2-D HF tensor is the transpose of the flan_jax one.
    """

    name: str
    transpose: bool


def hf_names(config: t5.T5Config) -> dict[str, HfTensor]:
    """flan_jax parameter path -> HfTensor, for every parameter of `config`'s model.

    Tied models (logits_via_embedding) have no logits_dense and no lm_head: HF ties lm_head,
    encoder.embed_tokens and decoder.embed_tokens to shared.weight.
    """
    if config.relpos_per_layer:
        raise ValueError(
            "This model has a relative position table per layer (relpos_per_layer, as T5X's "
            "scalable_t5); Hugging Face T5 keeps one table per stack, so it cannot hold this "
            "model. Export is possible only for models with shared tables.")
    if config.scan_layers:
        raise ValueError("hf_names names the unscanned layout; convert scanned params with "
                         "flan_jax.convert.layers.to_unscanned and pass scan_layers=False.")
    names: dict[str, HfTensor] = {"token_embedder/embedding": HfTensor("shared.weight", False)}
    mlp = (["wi"] if len(config.mlp_activations) == 1
           else [f"wi_{i}" for i in range(len(config.mlp_activations))]) + ["wo"]

    def attention(ours: str, theirs: str) -> None:
        for flax_name, hf_name in _ATTENTION_PROJECTIONS:
            names[f"{ours}/{flax_name}/kernel"] = HfTensor(f"{theirs}.{hf_name}.weight", True)

    def block(ours: str, theirs: str) -> None:
        names[f"{ours}/scale"] = HfTensor(f"{theirs}.layer_norm.weight", False)

    for i in range(config.num_encoder_layers):
        ours, theirs = f"encoder/layers_{i}", f"encoder.block.{i}.layer"
        block(f"{ours}/pre_attention_layer_norm", f"{theirs}.0")
        attention(f"{ours}/attention", f"{theirs}.0.SelfAttention")
        block(f"{ours}/pre_mlp_layer_norm", f"{theirs}.1")
        for w in mlp:
            names[f"{ours}/mlp/{w}/kernel"] = HfTensor(f"{theirs}.1.DenseReluDense.{w}.weight",
                                                       True)
    for i in range(config.num_decoder_layers):
        ours, theirs = f"decoder/layers_{i}", f"decoder.block.{i}.layer"
        block(f"{ours}/pre_self_attention_layer_norm", f"{theirs}.0")
        attention(f"{ours}/self_attention", f"{theirs}.0.SelfAttention")
        block(f"{ours}/pre_cross_attention_layer_norm", f"{theirs}.1")
        attention(f"{ours}/encoder_decoder_attention", f"{theirs}.1.EncDecAttention")
        block(f"{ours}/pre_mlp_layer_norm", f"{theirs}.2")
        for w in mlp:
            names[f"{ours}/mlp/{w}/kernel"] = HfTensor(f"{theirs}.2.DenseReluDense.{w}.weight",
                                                       True)
    for stack in ("encoder", "decoder"):
        # HF keeps the one shared table of a stack in its first block.
        names[f"{stack}/relpos_bias/rel_embedding"] = HfTensor(
            f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight", True)
        names[f"{stack}/{stack}_norm/scale"] = HfTensor(f"{stack}.final_layer_norm.weight",
                                                        False)
    if not config.logits_via_embedding:
        names["decoder/logits_dense/kernel"] = HfTensor("lm_head.weight", True)
    return names


# HF state dicts may also carry these aliases of shared.weight (older pytorch_model.bin files
# do); they are redundant with shared.weight when the model ties them.
HF_TIED_ALIASES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")


@functools.lru_cache(maxsize=16)
def _abstract_shapes(config: t5.T5Config) -> dict[str, tuple[int, ...]]:
    boxed = checkpointing.abstract_params(t5.Transformer(config))
    return checkpointing.flat_shapes(flax.linen.unbox(boxed))


def param_shapes(config: t5.T5Config) -> dict[str, tuple[int, ...]]:
    """flan_jax parameter path -> shape, from the model itself (eval_shape, no compute)."""
    return dict(_abstract_shapes(config))


def check_shapes(config: t5.T5Config, shapes: Mapping[str, tuple[int, ...]],
                 where: str) -> None:
    """Raises ShapeMismatchError (a ValueError) naming every tensor that does not fit."""
    checkpointing.check_shapes(
        shapes, param_shapes(config), where, model=f"the model config {config_summary(config)}",
        fix="Pass the --gin_file of the model that wrote the checkpoint, or none to read the "
            "config off the shapes.")


def config_summary(config: t5.T5Config) -> str:
    return (f"(vocab_size={config.vocab_size}, emb_dim={config.emb_dim}, "
            f"num_heads={config.num_heads}, head_dim={config.head_dim}, "
            f"mlp_dim={config.mlp_dim}, layers={config.num_encoder_layers}+"
            f"{config.num_decoder_layers}, mlp_activations={config.mlp_activations}, "
            f"logits_via_embedding={config.logits_via_embedding})")


def infer_config(shapes: Mapping[str, tuple[int, ...]], where: str, **overrides) -> t5.T5Config:
    """A T5Config read off a flan_jax/T5X parameter tree's shapes.

    Shapes fix every size. They cannot tell which activations a gated MLP uses, nor
    relative_attention_max_distance; T5's conventions fill those in (gated -> ('gelu',
    'linear') as T5 v1.1 / Flan-T5, single -> ('relu',) as T5 v1.0; max distance 128)
    unless given in `overrides` (e.g. from a --gin_file).
    """
    def need(name: str) -> tuple[int, ...]:
        if name not in shapes:
            raise ValueError(f"{where} has no parameter {name!r}; is it a T5 encoder-decoder "
                             f"checkpoint? Found e.g. {sorted(shapes)[:5]}.")
        return tuple(shapes[name])

    vocab_size, emb_dim = need("token_embedder/embedding")
    # One table per stack (T5), or per layer (T5X scalable_t5: relpos_per_layer).
    relpos_per_layer = ("encoder/relpos_bias/rel_embedding" not in shapes
                        and "encoder/layers_0/relpos_bias/rel_embedding" in shapes)
    num_heads, num_buckets = need("encoder/layers_0/relpos_bias/rel_embedding"
                                  if relpos_per_layer else "encoder/relpos_bias/rel_embedding")
    joined = need("encoder/layers_0/attention/query/kernel")[1]
    if joined % num_heads:
        raise ValueError(f"{where}: encoder/layers_0/attention/query/kernel has "
                         f"{joined} outputs, not a multiple of the {num_heads} heads of "
                         "encoder/relpos_bias/rel_embedding.")
    layer_numbers = {stack: {int(m.group(1)) for name in shapes
                             if (m := re.match(rf"{stack}/layers_(\d+)/", name))}
                     for stack in ("encoder", "decoder")}
    gated = "encoder/layers_0/mlp/wi_0/kernel" in shapes
    fields = dict(
        vocab_size=vocab_size, emb_dim=emb_dim, num_heads=num_heads,
        head_dim=joined // num_heads,
        num_encoder_layers=len(layer_numbers["encoder"]),
        num_decoder_layers=len(layer_numbers["decoder"]),
        mlp_dim=need("encoder/layers_0/mlp/wo/kernel")[0],
        mlp_activations=("gelu", "linear") if gated else ("relu",),
        logits_via_embedding="decoder/logits_dense/kernel" not in shapes,
        relative_attention_num_buckets=num_buckets, relpos_per_layer=relpos_per_layer,
        dropout_rate=0.0, dtype="float32")
    fields.update(overrides)
    return t5.T5Config(**fields)


def activations_to_hf(activations: tuple[str, ...]) -> str:
    """T5Config.mlp_activations -> HF T5Config.feed_forward_proj."""
    table = {("relu",): "relu", ("silu",): "silu", ("gelu", "linear"): "gated-gelu",
             ("silu", "linear"): "gated-silu", ("relu", "linear"): "gated-relu"}
    if tuple(activations) not in table:
        raise ValueError(f"mlp_activations={activations} has no Hugging Face T5 equivalent; "
                         f"supported: {sorted(table)}.")
    return table[tuple(activations)]


def activations_from_hf(feed_forward_proj: str, where: str) -> tuple[str, ...]:
    """HF T5Config.feed_forward_proj -> T5Config.mlp_activations.

    HF's gated-gelu uses the tanh approximation ("gelu_new"), as flan_jax does; its plain
    "gelu" is the exact erf GELU, which flan_jax's T5 does not implement.
    """
    table = {"relu": ("relu",), "silu": ("silu",), "gated-gelu": ("gelu", "linear"),
             "gated-silu": ("silu", "linear"), "gated-relu": ("relu", "linear")}
    if feed_forward_proj not in table:
        raise ValueError(
            f"{where}: feed_forward_proj={feed_forward_proj!r} is not supported by flan_jax's "
            f"T5 (supported: {sorted(table)}; plain 'gelu' is HF's exact erf GELU, while "
            "flan_jax uses the tanh approximation of T5X / gated-gelu).")
    return table[feed_forward_proj]
