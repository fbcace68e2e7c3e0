"""The T5 encoder-decoder (v1.0 and v1.1) in flax.linen, with T5X parameter names.

Parameters are always float32; activations run in `T5Config.dtype` (inputs and kernels are
cast at each matmul, as in T5X). Every parameter and the main activations carry T5X logical
axis names, so flan_jax/partitioning.py can shard them; without a mesh the annotations are
no-ops.

Inputs follow seqio's EncDecFeatureConverter: int32 [batch, length] token ids with 0 as
padding, optionally packed (several examples per row, told apart by segment ids). All masks
are derived from the tokens and segment ids, so a packed row gives the same per-token logits
as its examples run one by one.

For generation the decoder also runs one position at a time over a KV cache (the 'cache'
collection, `Transformer.decode(..., decode=True)`); flan_jax/models/decoding.py drives it.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

# Added to the logits of masked attention pairs; finite so fully masked rows stay NaN-free.
NEG_INF = -1e10
_DTYPES = {"bfloat16": jnp.bfloat16, "float32": jnp.float32}
_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    # Tanh approximation, as T5X (flax's default) and HF's "gelu_new".
    "gelu": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "linear": lambda x: x,
}
_REMAT_POLICIES = {
    "full": None,  # save nothing: recompute the whole layer on the backward pass
    "dots": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}
# Scanned stacks (T5Config.scan_layers) stack each layer parameter on this axis, as T5X's
# param_scan_axis: kernels become [in, layers, out], so Adafactor keeps factoring over the
# two wide axes. Logical axis name 'layers', which partitioning.py never shards.
PARAM_SCAN_AXIS = 1
# ... and the decoding cache on this axis, after the batch axis, so that axis 0 of every
# cache entry is the batch in both layouts.
CACHE_SCAN_AXIS = 1
SCANNED_LAYERS = "layers"  # the scanned stack's module name: encoder/layers/attention/...


def is_scanned_layer_param(path: tuple[str, ...]) -> bool:
    """Is the parameter at path (e.g. ('encoder', 'layers', 'mlp', 'wo', 'kernel')) one
    array of all a scanned stack's layers, the layer index on PARAM_SCAN_AXIS?"""
    return len(path) > 2 and path[0] in ("encoder", "decoder") and path[1] == SCANNED_LAYERS

# Projections LoRA can adapt: the four attention projections and (all of) the MLP's.
LORA_TARGETS = ("query", "key", "value", "out", "mlp")
_SIZE_FIELDS = ("vocab_size", "emb_dim", "num_heads", "num_encoder_layers",
                "num_decoder_layers", "head_dim", "mlp_dim", "relative_attention_num_buckets",
                "relative_attention_max_distance")


@dataclasses.dataclass(frozen=True)
class T5Config:
    """Hyperparameters of a T5 model. The defaults are T5 v1.1 small (76,961,152 params).

    Attributes:
      vocab_size: embedding rows (seqio's T5 vocabulary pads 32100 to 32128).
      emb_dim: d_model.
      num_heads: attention heads.
      num_encoder_layers / num_decoder_layers: blocks per stack.
      head_dim: d_kv, the size of one head.
      mlp_dim: d_ff.
      mlp_activations: one input projection per entry, multiplied together; ("gelu", "linear")
        is v1.1's gated GELU, ("relu",) is v1.0.
      dropout_rate: used everywhere T5X applies dropout.
      logits_via_embedding: tie the output projection to the input embedding (v1.0).
      dtype: activation dtype, "bfloat16" or "float32". Parameters are always float32.
      float32_attention_logits: compute q.k and the attention softmax in float32 even when
        dtype is bfloat16 (False, as in T5X: both in the activation dtype).
      relative_attention_num_buckets / relative_attention_max_distance: T5 position buckets.
      remat_policy: "none", "full" (recompute each layer) or "dots" (keep matmul outputs
        without batch dimensions, recompute the rest).
      scan_layers: run each stack as one nn.scan over a single layer (T5X's option of the
        same name): compile time no longer grows with depth. Parameters are then stacked,
        '<stack>/layers/...' with the layer index on axis PARAM_SCAN_AXIS (1), instead of
        '<stack>/layers_<i>/...'; flan_jax/convert/layers.py converts between the layouts
        and restoring does it by itself. Same outputs as the loop, to float rounding
        (dropout masks are drawn differently, as in T5X).
      relpos_per_layer: every layer owns its relative position table
        ('<stack>/layers_<i>/relpos_bias/rel_embedding', as T5X's scalable_t5 and uMT5)
        instead of one table per stack ('<stack>/relpos_bias/rel_embedding', T5 and T5X's
        minimal T5). Needed to load T5X scanned checkpoints, whose tables differ per layer.

    Parameter-efficient tuning (flan_jax/peft.py trains only these; 0 turns each off, and
    with both off the parameter tree and the numerics are exactly those of plain T5):
      prompt_length: soft prompt tuning (Lester et al. 2021): this many learned vectors
        [prompt_length, emb_dim] ('encoder/prompt') are prepended to every encoder input's
        embeddings; the encoder and the decoder's cross-attention see them as real tokens.
        Packed batches carry a prompt per packed segment: the data pipeline reserves
        prompt_length slots at the start of every example (data.PromptSlotsFeatureConverter)
        and the encoder writes the prompt into them (see Transformer.encode).
      prompt_init_texts: class-label initialisation: prompt row i starts as the mean
        embedding of the tokens of text i (e.g. the task's answer options); the remaining
        rows, or all rows when empty, are embeddings sampled from the vocabulary.
      lora_rank: LoRA (Hu et al. 2021): each targeted projection W [in, out] gains
        lora_a [in, rank] and lora_b [rank, out] (zero-initialised), computing
        x W + (lora_alpha / lora_rank) x lora_a lora_b.
      lora_alpha: the LoRA scale's numerator; None means lora_rank (a scale of 1).
      lora_targets: which projections get LoRA: attention "query", "key", "value", "out"
        (in every attention block) and "mlp" (all MLP projections).
    """

    vocab_size: int = 32128
    emb_dim: int = 512
    num_heads: int = 6
    num_encoder_layers: int = 8
    num_decoder_layers: int = 8
    head_dim: int = 64
    mlp_dim: int = 1024
    mlp_activations: tuple[str, ...] = ("gelu", "linear")
    dropout_rate: float = 0.0
    logits_via_embedding: bool = False
    dtype: str = "bfloat16"
    float32_attention_logits: bool = False
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    remat_policy: str = "none"
    scan_layers: bool = False
    relpos_per_layer: bool = False
    prompt_length: int = 0
    prompt_init_texts: tuple[str, ...] = ()
    lora_rank: int = 0
    lora_alpha: float | None = None
    lora_targets: tuple[str, ...] = ("query", "key", "value", "out")

    def __post_init__(self):
        # gin and JSON give lists; the config must stay hashable (flax modules hash it).
        for name in ("mlp_activations", "prompt_init_texts", "lora_targets"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in _SIZE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"T5Config.{name} must be a positive integer, got {value!r}.")
        if not self.mlp_activations:
            raise ValueError("T5Config.mlp_activations must name at least one activation, e.g. "
                             "('gelu', 'linear') for T5 v1.1 or ('relu',) for T5 v1.0.")
        unknown = [a for a in self.mlp_activations if a not in _ACTIVATIONS]
        if unknown:
            raise ValueError(f"T5Config.mlp_activations has unknown names {unknown}; "
                             f"choose from {sorted(_ACTIVATIONS)}.")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"T5Config.dropout_rate must be in [0, 1), got {self.dropout_rate}.")
        if self.dtype not in _DTYPES:
            raise ValueError(f"T5Config.dtype must be one of {sorted(_DTYPES)}, got "
                             f"{self.dtype!r} (float16 overflows in T5's activations).")
        if self.remat_policy not in ("none", *_REMAT_POLICIES):
            raise ValueError(f"T5Config.remat_policy must be 'none', 'full' or 'dots', got "
                             f"{self.remat_policy!r}.")
        for name in ("scan_layers", "relpos_per_layer"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"T5Config.{name} must be True or False, got "
                                 f"{getattr(self, name)!r}.")
        self._check_buckets()
        self._check_peft()

    def _check_peft(self):
        for name in ("prompt_length", "lora_rank"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"T5Config.{name} must be an integer >= 0 (0 turns it off), "
                                 f"got {value!r}.")
        if len(self.prompt_init_texts) > self.prompt_length:
            raise ValueError(
                f"T5Config.prompt_init_texts has {len(self.prompt_init_texts)} texts but "
                f"prompt_length is {self.prompt_length}; each text initialises one prompt "
                "row, so raise prompt_length or give fewer texts.")
        if self.lora_alpha is not None and not self.lora_alpha > 0:
            raise ValueError(f"T5Config.lora_alpha must be None (= lora_rank) or > 0, got "
                             f"{self.lora_alpha!r}.")
        unknown = [t for t in self.lora_targets if t not in LORA_TARGETS]
        if unknown or (self.lora_rank and not self.lora_targets):
            raise ValueError(f"T5Config.lora_targets must name some of {LORA_TARGETS}, got "
                             f"{self.lora_targets!r}.")

    @property
    def lora_scale(self) -> float:
        """The factor of the low-rank update: lora_alpha / lora_rank."""
        alpha = self.lora_rank if self.lora_alpha is None else self.lora_alpha
        return alpha / self.lora_rank if self.lora_rank else 0.0

    def lora_rank_of(self, target: str) -> int:
        """lora_rank for a projection kind in LORA_TARGETS, 0 when it is not targeted."""
        return self.lora_rank if target in self.lora_targets else 0

    def _check_buckets(self):
        # The encoder gives half the buckets to each direction and half of those to exact
        # offsets; the log-spaced range needs at least one exact bucket and must reach past it.
        buckets, max_distance = (self.relative_attention_num_buckets,
                                 self.relative_attention_max_distance)
        if buckets < 4 or buckets % 2:
            raise ValueError("T5Config.relative_attention_num_buckets must be even and >= 4, "
                             f"got {buckets} (T5 uses 32).")
        if max_distance <= buckets // 2:
            raise ValueError("T5Config.relative_attention_max_distance must exceed "
                             f"relative_attention_num_buckets // 2 = {buckets // 2}, got "
                             f"{max_distance} (T5 uses 128).")

    @property
    def activation_dtype(self) -> jnp.dtype:
        return _DTYPES[self.dtype]

    def num_params(self) -> int:
        """Exact number of scalars in the parameter tree."""
        d, joined, relpos = self.emb_dim, self.num_heads * self.head_dim, (
            self.num_heads * self.relative_attention_num_buckets)
        attention = 4 * d * joined
        mlp = (len(self.mlp_activations) + 1) * d * self.mlp_dim
        encoder_layer = attention + mlp + 2 * d
        decoder_layer = 2 * attention + mlp + 3 * d
        total = self.vocab_size * d  # shared token embedding
        for layers, layer in ((self.num_encoder_layers, encoder_layer),
                              (self.num_decoder_layers, decoder_layer)):
            tables = layers if self.relpos_per_layer else 1
            total += layers * layer + tables * relpos + d
        if not self.logits_via_embedding:
            total += d * self.vocab_size
        return total + self.num_peft_params()

    def num_peft_params(self) -> int:
        """Scalars of the soft prompt and the LoRA factors (0 for plain T5)."""
        d, joined, r = self.emb_dim, self.num_heads * self.head_dim, self.lora_rank
        attention = sum(self.lora_rank_of(t) and r * (d + joined)
                        for t in ("query", "key", "value", "out"))
        mlp = (len(self.mlp_activations) + 1) * r * (d + self.mlp_dim) if "mlp" in (
            self.lora_targets) else 0
        return (self.prompt_length * d
                + self.num_encoder_layers * (attention + mlp)
                + self.num_decoder_layers * (2 * attention + mlp))


# ----------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------

def _kernel_init(scale: float = 1.0, distribution: str = "truncated_normal"):
    return nn.initializers.variance_scaling(scale, "fan_in", distribution)


class Dense(nn.Module):
    """A bias-free [in, features] projection with a float32 kernel, computed in `dtype`.

    output_dtype, if set, is the matmul's accumulation and result dtype (float32 for logits).
    lora_rank > 0 adds LoRA factors lora_a [in, rank] and lora_b [rank, features] and
    returns x kernel + lora_scale * (x lora_a) lora_b. lora_b starts at zero, so an untrained
    adapter adds exact zeros. Going through the rank keeps the update's cost at
    rank * (in + features) per token instead of materialising the [in, features] product.
    """

    features: int
    kernel_axes: tuple[str, str]
    dtype: jnp.dtype
    kernel_init: Callable = _kernel_init()
    output_dtype: jnp.dtype | None = None
    lora_rank: int = 0
    lora_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """[..., in] -> [..., features]."""
        kernel = self.param("kernel", nn.with_logical_partitioning(self.kernel_init,
                                                                   self.kernel_axes),
                            (x.shape[-1], self.features), jnp.float32)
        # The matmul runs on [rows, in]: on 3-D inputs XLA:CPU copied a transposed activation
        # before every weight-gradient matmul (bench-cpu 2.51 -> 2.20 s per step flattened).
        leading = x.shape[:-1]
        x = x.reshape((-1, x.shape[-1]))
        y = jnp.dot(x.astype(self.dtype), kernel.astype(self.dtype),
                    preferred_element_type=self.output_dtype)
        if not self.lora_rank:
            return y.reshape(leading + (self.features,))
        # The rank axis is small: left unsharded (None); the other axis follows the kernel's.
        lora_a = self.param("lora_a", nn.with_logical_partitioning(
            _kernel_init(), (self.kernel_axes[0], None)),
            (x.shape[-1], self.lora_rank), jnp.float32)
        lora_b = self.param("lora_b", nn.with_logical_partitioning(
            nn.initializers.zeros, (None, self.kernel_axes[1])),
            (self.lora_rank, self.features), jnp.float32)
        low = jnp.dot(x.astype(self.dtype), lora_a.astype(self.dtype))
        update = jnp.dot(low, lora_b.astype(self.dtype), preferred_element_type=self.output_dtype)
        return (y + (self.lora_scale * update).astype(y.dtype)).reshape(
            leading + (self.features,))


class RMSNorm(nn.Module):
    """T5's layer norm: scale by the root mean square; no mean subtraction, no bias."""

    dtype: jnp.dtype
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """[batch, length, embed] -> [batch, length, embed] in dtype; statistics in float32."""
        scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones,
                                                                 ("embed",)),
                           (x.shape[-1],), jnp.float32)
        x = x.astype(jnp.float32)
        x = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + self.epsilon)
        y = x.astype(self.dtype) * scale.astype(self.dtype)
        # As T5X's scalable_t5: with PARAMETER_SHARDING the scale's 'embed' axis lives on
        # 'data', and the output feeds matmuls whose kernels do too; pinning the output keeps
        # XLA from laying the activation out like those parameters (batch on no mesh axis).
        return nn.with_logical_constraint(y, ("batch", "length", "embed"))


class Embed(nn.Module):
    """Token embedding, also usable as the tied output projection (T5 v1.0)."""

    num_embeddings: int
    features: int
    dtype: jnp.dtype

    def setup(self):
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(nn.initializers.normal(stddev=1.0), ("vocab", "embed")),
            (self.num_embeddings, self.features), jnp.float32)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """[batch, length] int32 -> [batch, length, embed] in dtype."""
        # A gather: a one-hot matmul would cost batch*length*vocab*embed FLOPs.
        return jnp.take(self.embedding, tokens, axis=0).astype(self.dtype)

    def attend(self, x: jax.Array) -> jax.Array:
        """[batch, length, embed] -> [batch, length, vocab] float32 logits."""
        return jnp.dot(x.astype(self.dtype), self.embedding.astype(self.dtype).T,
                       preferred_element_type=jnp.float32)


def relative_position_bucket(relative_position: jax.Array, *, bidirectional: bool,
                             num_buckets: int, max_distance: int) -> jax.Array:
    """T5's bucket of each relative position (key position - query position).

    Offsets below max_exact get one bucket each; larger ones share log-spaced buckets up to
    max_distance, beyond which everything falls in the last bucket. Bidirectional (encoder)
    gives half the buckets to keys after the query; causal (decoder) sends every future
    offset to bucket 0, where the causal mask hides it anyway.

    Args:
      relative_position: int array of any shape.
    Returns:
      int32 array of the same shape with values in [0, num_buckets).
    """
    distance = -relative_position  # > 0 for keys before the query
    bucket = jnp.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        bucket += (distance < 0).astype(bucket.dtype) * num_buckets
        distance = jnp.abs(distance)
    else:
        distance = jnp.maximum(distance, 0)
    max_exact = num_buckets // 2
    # eps keeps log() finite at distance 0; that case takes the exact branch anyway.
    log_ratio = jnp.log(distance.astype(jnp.float32) / max_exact + jnp.finfo(jnp.float32).eps)
    large = max_exact + (log_ratio / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).astype(bucket.dtype)
    large = jnp.minimum(large, num_buckets - 1)
    return (bucket + jnp.where(distance < max_exact, distance, large)).astype(jnp.int32)


class RelativePositionBias(nn.Module):
    """A learned per-head scalar for each relative-position bucket.

    One per stack (T5), or one per layer with T5Config.relpos_per_layer (T5X scalable_t5).
    """

    num_heads: int
    num_buckets: int
    max_distance: int
    bidirectional: bool

    @nn.compact
    def __call__(self, query_length: int, key_length: int,
                 query_offset: int | jax.Array = 0) -> jax.Array:
        """Returns the float32 bias [1, heads, query_length, key_length].

        query_offset: position of the first query (the cache index when decoding one
        position at a time); keys always start at position 0.
        """
        table = self.param(
            "rel_embedding",
            nn.with_logical_partitioning(nn.initializers.variance_scaling(1.0, "fan_avg",
                                                                          "uniform"),
                                         ("heads", "relpos_buckets")),
            (self.num_heads, self.num_buckets), jnp.float32)
        # Offsets within a row equal offsets within a packed segment; cross-segment pairs
        # are masked, so positions from arange are right with packing too.
        query_positions = jnp.arange(query_length)[:, None] + query_offset
        relative = jnp.arange(key_length)[None, :] - query_positions
        buckets = relative_position_bucket(relative, bidirectional=self.bidirectional,
                                           num_buckets=self.num_buckets,
                                           max_distance=self.max_distance)
        return jnp.take(table, buckets, axis=1)[None]


def _sum_over_leading_axis(x: jax.Array) -> jax.Array:
    """x.sum(0) as log2(n) halving adds: [n, ...] -> [...].

    XLA:CPU (jaxlib 0.10.2) hands reductions to YNNPACK, which is slow over a leading axis:
    summing [16, 4, 256, 256] over the batch took 52 ms that way and 1-17 ms as elementwise
    adds of halves, which XLA fuses into one loop (measured 2026-11-30). Same sum, pairwise
    order: differs only in float rounding.
    """
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        summed = x[:half] + x[half:2 * half]
        if x.shape[0] % 2:  # an odd row left over joins the first pair
            summed = summed.at[0].add(x[-1])
        x = summed
    return x[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _broadcast_over_batch(bias: jax.Array, batch: int) -> jax.Array:
    """[1, ...] -> [batch, ...]; on CPU its gradient sums over the batch by
    _sum_over_leading_axis, elsewhere by XLA's reduce (what autodiff would emit).

    The relative position bias is shared by every row, so its gradient is the sum over rows
    (and layers) of the attention logits' gradient: with autodiff's reduce that sum cost more
    than any other non-matmul op of bench-cpu's step. On TPU the halving adds' partial sums
    cost memory instead (T5 v1.1 XXL on a v4-128: 10.26 -> 12.12 GiB of temporaries per
    chip, README "Pod scale"), so the choice is made per lowering platform.
    """
    return jnp.broadcast_to(bias, (batch,) + bias.shape[1:])


def _broadcast_over_batch_fwd(bias, batch):
    return _broadcast_over_batch(bias, batch), None


def _broadcast_over_batch_bwd(batch, residuals, g):
    del batch, residuals
    # Resolved when the step is lowered, for the platform it is lowered for (flan_jax.aot
    # lowers for TPU on a CPU host and gets the reduce).
    summed = jax.lax.platform_dependent(g, cpu=_sum_over_leading_axis,
                                        default=lambda x: jnp.sum(x, axis=0))
    return (summed[None],)


_broadcast_over_batch.defvjp(_broadcast_over_batch_fwd, _broadcast_over_batch_bwd)


def _rows_to_positions(x: jax.Array, groups: int) -> jax.Array:
    """[rows * groups, heads, q_len, d] -> [rows, heads, groups * q_len, d], group-major."""
    grouped = x.reshape((-1, groups) + x.shape[1:])
    return jnp.swapaxes(grouped, 1, 2).reshape(
        grouped.shape[0], x.shape[1], groups * x.shape[2], x.shape[3])


def _positions_to_rows(x: jax.Array, groups: int) -> jax.Array:
    """The inverse of _rows_to_positions: [rows, heads, groups * q_len, d] -> rows * groups."""
    grouped = x.reshape(x.shape[:2] + (groups, -1, x.shape[3]))
    return jnp.swapaxes(grouped, 1, 2).reshape((-1, x.shape[1]) + grouped.shape[3:])


def _beam_slot_mask(slots: jax.Array, cache_index: jax.Array) -> jax.Array:
    """Which entries of MultiHeadAttention's beams cache each beam reads at cache_index.

    slots int32 [batch, beams, length] (the slot holding each beam's entry per position)
    -> bool [batch, 1, beams, length * beams], True at p * beams + slots[b, i, p] for every
    p <= cache_index.
    """
    batch, beams, length = slots.shape
    reads = ((slots[..., None] == jnp.arange(beams))
             & (jnp.arange(length) <= cache_index)[:, None])      # [batch, beams, length, beams]
    return reads.reshape(batch, 1, beams, length * beams)


def _beam_cache_bias(bias: jax.Array, beams: int) -> jax.Array:
    """A decoding step's position bias [1, heads, 1, length] over the beams cache's keys,
    [1, heads, 1, length * beams] (the beams' entries for position p at p * beams + slot)."""
    return bias if beams == 1 else jnp.repeat(bias, beams, axis=-1)


class MultiHeadAttention(nn.Module):
    """T5 attention: no biases, no 1/sqrt(head_dim) at run time (folded into the query init)."""

    config: T5Config

    @nn.compact
    def __call__(self, inputs_q: jax.Array, inputs_kv: jax.Array, mask: jax.Array,
                 bias: jax.Array | None, deterministic: bool, *, decode: bool = False,
                 cache_index: jax.Array | None = None,
                 max_decode_length: int | None = None, beams: int = 1) -> jax.Array:
        """Attends from inputs_q [batch, q_len, embed] to inputs_kv [batch, kv_len, embed].

        inputs_q may instead hold G consecutive rows per inputs_kv row, [batch * G, q_len,
        embed] (beam search's beams of one example against its encoder output); mask is then
        [batch, 1, 1, kv_len] and bias None, and the output has inputs_q's rows.

        Args:
          mask: bool [batch, 1, q_len, kv_len], True where attention is allowed.
          bias: optional float32 [1, heads, q_len, kv_len] relative position bias.
          decode: use the 'cache' collection (see below); kv_len in mask and bias is then
            the cached length.
          cache_index: with decode, marks self-attention: inputs_kv is the one new position
            [batch, 1, embed]; its key and value are written at cache_index into
            cached_key / cached_value [batch, heads, max_decode_length, head_dim] (created as
            zeros on the first call) and the query attends to the whole cache (the mask hides
            positions after cache_index). Without cache_index, decode marks cross-attention:
            inputs_kv (the encoder output) is the same every step, so its keys and values are
            projected on the first call, cached (heads-major) and reused.
          max_decode_length: the self-attention cache length, needed on the creating call.
          beams: with cache_index, inputs_q's rows are `beams` consecutive beams of each of
            batch / beams examples (beam search). The cache then keeps an example's beams
            together, cached_key / cached_value [batch / beams, heads, max_decode_length *
            beams, head_dim], position p of beam slot j at p * beams + j, and mask is
            [batch / beams, 1, beams, max_decode_length * beams]: which slot each beam reads
            at each position (Decoder's beam_slots), so beam search reorders those slots
            instead of moving the cache. Each beam's query meets all k slots' keys: k times
            the multiply-adds of a per-beam product, reading the same bytes once, as a
            [k, head_dim] x [head_dim, length * k] product rather than k matrix-vector ones
            (on bench-cpu's beam 4, 64 positions, about a tenth of the step's projection
            multiply-adds; they grow with max_decode_length * beams).
        Returns:
          [batch, q_len, embed] in the activation dtype.
        """
        cfg, dtype = self.config, self.config.activation_dtype
        joined = cfg.num_heads * cfg.head_dim
        axes = ("embed", "joined_kv")
        # T5X scales the query init instead of the logits, so checkpoints need no rescaling.
        query_init = lambda *a: _kernel_init(1.0, "normal")(*a) / math.sqrt(cfg.head_dim)
        lora = lambda target: dict(lora_rank=cfg.lora_rank_of(target), lora_scale=cfg.lora_scale)
        query = self._split_heads(Dense(joined, axes, dtype, query_init, name="query",
                                        **lora("query"))(inputs_q))
        project = lambda name: self._split_heads(
            Dense(joined, axes, dtype, _kernel_init(1.0, "normal"), name=name,
                  **lora(name))(inputs_kv))
        if not decode:
            key, value = project("key"), project("value")
        elif cache_index is None:
            key, value = self._static_kv_cache(project)
        else:
            key, value = self._append_kv_cache(project("key"), project("value"), cache_index,
                                               max_decode_length, beams)

        groups = query.shape[0] // key.shape[0]
        if groups * key.shape[0] != query.shape[0]:
            raise ValueError(f"{query.shape[0]} query rows for {key.shape[0]} key rows: each "
                             "key row must serve the same number of consecutive query rows.")
        if groups > 1:
            # Beam search: an example's beams (consecutive rows) share its encoder keys and
            # values, cached once per example, and its self-attention cache (see beams);
            # their queries become query positions of that example, so a step reads each
            # cache once, not once per beam.
            query = _rows_to_positions(query, groups)
        weights = self._attention_weights(query, key, mask, bias, deterministic)
        # Heads-major operands make both attention matmuls plain batched products over
        # (batch, heads). Left to choose layouts for "bqhd,bkhd->bhqk" and
        # "bhqk,bkhd->bqhd", XLA:CPU computed the context as (v^T w^T)^T at 39-67 GFLOP/s
        # against 146 for w.v: scoring 754 -> 550 ms, greedy decoding 1,335 -> 1,113 ms
        # (README "Benchmarks"). Only the [batch, heads, q_len, head_dim] context is
        # transposed back, to feed the output projection.
        context = jnp.einsum("bhqk,bhkd->bhqd", weights.astype(dtype), value)
        if groups > 1:
            context = _positions_to_rows(context, groups)
        context = jnp.swapaxes(context, 1, 2).reshape(context.shape[0], -1, joined)
        out = Dense(cfg.emb_dim, ("joined_kv", "embed"), dtype, _kernel_init(1.0, "normal"),
                    name="out", **lora("out"))(context)
        return nn.with_logical_constraint(out, ("batch", "length", "embed"))

    def _static_kv_cache(self, project: Callable[[str], jax.Array]
                         ) -> tuple[jax.Array, jax.Array]:
        """Keys and values of a constant inputs_kv, projected once and then read from cache.

        Returns (and caches) them as project gives them, [batch, heads, kv_len, head_dim].
        """
        if self.has_variable("cache", "cached_key"):
            return (self.get_variable("cache", "cached_key"),
                    self.get_variable("cache", "cached_value"))
        key, value = project("key"), project("value")
        self.variable("cache", "cached_key", lambda: key)
        self.variable("cache", "cached_value", lambda: value)
        return key, value

    def _append_kv_cache(self, key: jax.Array, value: jax.Array, cache_index: jax.Array,
                         max_decode_length: int | None, beams: int = 1
                         ) -> tuple[jax.Array, jax.Array]:
        """Writes one position's key/value [batch, heads, 1, head_dim] at cache_index.

        Returns the whole cache, [batch, heads, max_decode_length, head_dim] each; with
        beams > 1, [batch / beams, heads, max_decode_length * beams, head_dim], the beams'
        entries for cache_index at cache_index * beams + slot (see __call__).
        """
        if key.shape[2] != 1:
            raise ValueError("Cached self-attention decodes one position per call; got "
                             f"{key.shape[2]} decoder positions.")
        creating = not self.has_variable("cache", "cached_key")
        if creating and max_decode_length is None:
            raise ValueError("Creating the decoding cache needs max_decode_length.")
        if beams > 1:
            # An example's beams become consecutive positions: [batch / beams, heads, beams, d].
            key, value = _rows_to_positions(key, beams), _rows_to_positions(value, beams)
        length = max_decode_length * beams if creating else None  # read only when creating
        shape = key.shape[:2] + (length, key.shape[3])
        cached_key = self.variable("cache", "cached_key", jnp.zeros, shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, shape, value.dtype)
        start = (0, 0, cache_index * beams, 0)
        for cached, new in ((cached_key, key), (cached_value, value)):
            updated = jax.lax.dynamic_update_slice(cached.value, new.astype(cached.value.dtype),
                                                   start)
            cached.value = nn.with_logical_constraint(updated, ("batch", "heads", "length", "kv"))
        return cached_key.value, cached_value.value

    def _split_heads(self, x: jax.Array) -> jax.Array:
        """[batch, length, heads * head_dim] -> [batch, heads, length, head_dim]."""
        x = x.reshape(x.shape[:2] + (self.config.num_heads, self.config.head_dim))
        return nn.with_logical_constraint(jnp.swapaxes(x, 1, 2),
                                          ("batch", "heads", "length", "kv"))

    def _attention_weights(self, query: jax.Array, key: jax.Array, mask: jax.Array,
                           bias: jax.Array | None, deterministic: bool) -> jax.Array:
        """Softmax weights [batch, heads, q_len, kv_len] in the activation dtype, with dropout.

        query is [batch, heads, q_len, head_dim], key [batch, heads, kv_len, head_dim]. The
        dtypes are T5X's (t5x/examples/t5/layers.py dot_product_attention): q.k and the
        softmax run in float32 only with float32_attention_logits, else in the activation
        dtype; the mask and the position bias form one bias in the activation dtype; the
        dropout multiplier is keep / keep_prob in the activation dtype. In float32 all of
        this is plain float32 arithmetic.
        """
        cfg, dtype = self.config, self.config.activation_dtype
        if cfg.float32_attention_logits:
            query, key = query.astype(jnp.float32), key.astype(jnp.float32)
        logits = jnp.einsum("bhqd,bhkd->bhqk", query, key)
        attention_bias = jnp.where(mask, 0.0, NEG_INF).astype(dtype)
        if bias is not None:
            if bias.shape[0] == 1 and logits.shape[0] > 1:
                # Shared by every row: its gradient sums over the batch (see the helper).
                bias = _broadcast_over_batch(bias, logits.shape[0])
            attention_bias = attention_bias + bias.astype(dtype)
        weights = jax.nn.softmax(logits + attention_bias.astype(logits.dtype),
                                 axis=-1).astype(dtype)
        if deterministic or cfg.dropout_rate == 0.0:
            return weights
        # As T5X: one mask per (batch, head, key), shared by all queries.
        keep_prob = 1.0 - cfg.dropout_rate
        shape = weights.shape[:2] + (1,) + weights.shape[3:]
        keep = jax.random.bernoulli(self.make_rng("dropout"), keep_prob, shape)
        return weights * (keep.astype(dtype) / jnp.asarray(keep_prob, dtype))


class MlpBlock(nn.Module):
    """Feed-forward block: product of activated input projections, dropout, output projection."""

    config: T5Config

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        """[batch, length, embed] -> [batch, length, embed]."""
        cfg, dtype = self.config, self.config.activation_dtype
        activations = cfg.mlp_activations
        lora = dict(lora_rank=cfg.lora_rank_of("mlp"), lora_scale=cfg.lora_scale)
        hidden = None
        for i, name in enumerate(activations):
            # T5X names a single projection `wi` and gated ones `wi_0`, `wi_1`, ...
            dense_name = "wi" if len(activations) == 1 else f"wi_{i}"
            h = _ACTIVATIONS[name](Dense(cfg.mlp_dim, ("embed", "mlp"), dtype,
                                         name=dense_name, **lora)(x))
            hidden = h if hidden is None else hidden * h
        hidden = nn.with_logical_constraint(hidden, ("batch", "length", "mlp"))
        hidden = _dropout(cfg, hidden, deterministic)
        out = Dense(cfg.emb_dim, ("mlp", "embed"), dtype, name="wo", **lora)(hidden)
        return nn.with_logical_constraint(out, ("batch", "length", "embed"))


def _dropout(cfg: T5Config, x: jax.Array, deterministic: bool,
             broadcast_over_length: bool = True) -> jax.Array:
    # As T5X: masks are broadcast over the length axis (one per row and feature) everywhere
    # but on the encoder's output, where every element gets its own.
    broadcast_dims = (-2,) if broadcast_over_length else ()
    return nn.Dropout(rate=cfg.dropout_rate, broadcast_dims=broadcast_dims)(
        x, deterministic=deterministic)


# ----------------------------------------------------------------------------------------
# Layers and stacks
# ----------------------------------------------------------------------------------------

class EncoderLayer(nn.Module):
    """Pre-norm self-attention block and MLP block, each with a residual connection."""

    config: T5Config

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, bias: jax.Array | None,
                 deterministic: bool) -> jax.Array | tuple[jax.Array, None]:
        """x [batch, length, embed]; mask [batch, 1, length, length]; bias [1, heads, l, l].

        bias is None with relpos_per_layer (the layer computes its own). Returns x, or
        (x, None) as nn.scan's body when cfg.scan_layers.
        """
        cfg, dtype = self.config, self.config.activation_dtype
        if cfg.relpos_per_layer:
            bias = _relative_position_bias(cfg, bidirectional=True)(x.shape[1], x.shape[1])
        y = RMSNorm(dtype, name="pre_attention_layer_norm")(x)
        y = MultiHeadAttention(cfg, name="attention")(y, y, mask, bias, deterministic)
        x = x + _dropout(cfg, y, deterministic)
        y = RMSNorm(dtype, name="pre_mlp_layer_norm")(x)
        y = MlpBlock(cfg, name="mlp")(y, deterministic)
        x = x + _dropout(cfg, y, deterministic)
        x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
        return (x, None) if cfg.scan_layers else x


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder, then MLP; all pre-norm."""

    config: T5Config

    @nn.compact
    def __call__(self, x: jax.Array, encoded: jax.Array, self_mask: jax.Array,
                 cross_mask: jax.Array, bias: jax.Array | None, deterministic: bool,
                 cache_index: jax.Array | None = None, max_decode_length: int | None = None,
                 beams: int = 1) -> jax.Array | tuple[jax.Array, None]:
        """x [batch, dec_len, embed]; encoded [batch, enc_len, embed].

        self_mask [batch, 1, dec_len, dec_len]; cross_mask [batch, 1, dec_len, enc_len];
        bias [1, heads, dec_len, dec_len] for self-attention only (None with
        relpos_per_layer: the layer computes its own). With cache_index (one-step cached
        decoding, see MultiHeadAttention) dec_len is 1 and the self-attention key length is
        max_decode_length; with beams > 1 (x holds `beams` rows per encoded row, as Decoder
        says) the self-attention mask and bias are those of MultiHeadAttention's beams
        layout. Returns x, or (x, None) as nn.scan's body when cfg.scan_layers.
        """
        cfg, dtype = self.config, self.config.activation_dtype
        decode = cache_index is not None
        if cfg.relpos_per_layer:
            relpos_bias = _relative_position_bias(cfg, bidirectional=False)
            bias = (_beam_cache_bias(relpos_bias(1, max_decode_length,
                                                 query_offset=cache_index), beams)
                    if decode else relpos_bias(x.shape[1], x.shape[1]))
        y = RMSNorm(dtype, name="pre_self_attention_layer_norm")(x)
        y = MultiHeadAttention(cfg, name="self_attention")(
            y, y, self_mask, bias, deterministic, decode=decode, cache_index=cache_index,
            max_decode_length=max_decode_length, beams=beams)
        x = x + _dropout(cfg, y, deterministic)
        y = RMSNorm(dtype, name="pre_cross_attention_layer_norm")(x)
        y = MultiHeadAttention(cfg, name="encoder_decoder_attention")(
            y, encoded, cross_mask, None, deterministic, decode=decode)
        x = x + _dropout(cfg, y, deterministic)
        y = RMSNorm(dtype, name="pre_mlp_layer_norm")(x)
        y = MlpBlock(cfg, name="mlp")(y, deterministic)
        x = x + _dropout(cfg, y, deterministic)
        x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
        return (x, None) if cfg.scan_layers else x


def _maybe_remat(layer_class: type[nn.Module], cfg: T5Config,
                 deterministic_argnum: int) -> type[nn.Module]:
    """Wraps a layer class in nn.remat per cfg.remat_policy; param names are unchanged.

    deterministic_argnum counts `self` as 0; that bool must be static to pick the branch.
    """
    if cfg.remat_policy == "none":
        return layer_class
    # Inside a scan the loop boundary already keeps XLA from merging the recomputation with
    # the forward pass, so CSE prevention (which costs performance) is off there, as in T5X.
    return nn.remat(layer_class, policy=_REMAT_POLICIES[cfg.remat_policy],
                    static_argnums=(deterministic_argnum,), prevent_cse=not cfg.scan_layers)


def _relative_position_bias(cfg: T5Config, bidirectional: bool) -> RelativePositionBias:
    """The stack's (or with relpos_per_layer the layer's) table; named as in T5X."""
    return RelativePositionBias(cfg.num_heads, cfg.relative_attention_num_buckets,
                                cfg.relative_attention_max_distance, bidirectional,
                                name="relpos_bias")


def _run_layers(layer_class: type[nn.Module], cfg: T5Config, num_layers: int,
                x: jax.Array, *args) -> jax.Array:
    """x [batch, length, embed] through num_layers layers, each called as layer(x, *args).

    A Python loop over modules 'layers_<i>', or with cfg.scan_layers one nn.scan over a
    module 'layers' whose variables carry a leading layer index: params on PARAM_SCAN_AXIS
    (logical axis name 'layers'), the decoding cache on CACHE_SCAN_AXIS. Each scanned layer
    draws its own init and dropout randomness (split_rngs). Call from a compact method.
    """
    if not cfg.scan_layers:
        for i in range(num_layers):
            x = layer_class(cfg, name=f"layers_{i}")(x, *args)
        return x
    scanned = nn.scan(layer_class,
                      variable_axes={"params": PARAM_SCAN_AXIS, "cache": CACHE_SCAN_AXIS},
                      split_rngs={"params": True, "dropout": True},
                      in_axes=(nn.broadcast,) * len(args), length=num_layers,
                      metadata_params={nn.PARTITION_NAME: "layers"})
    x, _ = scanned(cfg, name=SCANNED_LAYERS)(x, *args)
    return x


class Encoder(nn.Module):
    """Embedding dropout, a stack of EncoderLayers (looped or scanned), final norm.

    The layers share one relative position bias, or each has its own (relpos_per_layer).
    """

    config: T5Config
    shared_embedding: Embed

    @nn.compact
    def __call__(self, tokens: jax.Array, mask: jax.Array, deterministic: bool,
                 prompt_slot_positions: jax.Array | None = None) -> jax.Array:
        """tokens [batch, length] -> [batch, prompt_length + length, embed].

        mask is [batch, 1, total, total] over the prompt positions (first) and the tokens.
        With prompt_slot_positions (packed batches: the in-segment positions [batch, length]
        of tokens that already hold prompt_length slots at the start of every segment) the
        prompt is written into those slots instead: [batch, length] in, [batch, length, embed]
        out, and mask is [batch, 1, length, length].
        """
        cfg = self.config
        x = self.shared_embedding(tokens)
        if cfg.prompt_length:
            # As T5X prompt tuning: the prompt sits in front of the token embeddings, so it
            # occupies (in-segment) positions 0..P-1 and the relative position bias treats
            # it like a prefix of the input. The random init is a placeholder: a run with a
            # base model draws the prompt from its embeddings (peft.initial_prompt).
            prompt = self.param(
                "prompt", nn.with_logical_partitioning(nn.initializers.uniform(0.5),
                                                       ("prompt", "embed")),
                (cfg.prompt_length, cfg.emb_dim), jnp.float32).astype(x.dtype)
            if prompt_slot_positions is None:
                prompt = jnp.broadcast_to(prompt, (x.shape[0],) + prompt.shape)
                x = jnp.concatenate([prompt, x], axis=1)
            else:
                # Slot p of a segment (position p < P) gets prompt row p; relative offsets
                # within a segment are then those of the unpacked concatenation.
                is_slot = (prompt_slot_positions < cfg.prompt_length)[..., None]
                rows = jnp.take(prompt, jnp.clip(prompt_slot_positions, 0,
                                                 cfg.prompt_length - 1), axis=0)
                x = jnp.where(is_slot, rows, x)
        x = _dropout(cfg, x, deterministic)
        x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
        length = x.shape[1]
        bias = None if cfg.relpos_per_layer else _relative_position_bias(
            cfg, bidirectional=True)(length, length)
        x = _run_layers(_maybe_remat(EncoderLayer, cfg, deterministic_argnum=4), cfg,
                        cfg.num_encoder_layers, x, mask, bias, deterministic)
        x = RMSNorm(cfg.activation_dtype, name="encoder_norm")(x)
        return _dropout(cfg, x, deterministic, broadcast_over_length=False)


class Decoder(nn.Module):
    """Decoder stack and output projection (tied to the embedding or `logits_dense`)."""

    config: T5Config
    shared_embedding: Embed

    @nn.compact
    def __call__(self, encoded: jax.Array, tokens: jax.Array, self_mask: jax.Array | None,
                 cross_mask: jax.Array, deterministic: bool, *, decode: bool = False,
                 max_decode_length: int | None = None) -> jax.Array:
        """encoded [batch, enc_len, embed]; tokens [batch, dec_len] (inputs, shifted right).

        With decode, tokens is the one position [batch, 1] at the cache's 'cache_index'
        (a scalar this module keeps in the 'cache' collection and advances by one per call);
        self_mask is then ignored: the causal mask is "key position <= cache_index". The call
        that creates the cache runs position 0 without advancing the index, so its output is
        to be discarded and the next call runs position 0 again.

        Beam search decodes k consecutive rows (beams) per encoded row, tokens [batch * k, 1].
        The self-attention caches then keep an example's beams together and never move
        (MultiHeadAttention's beams layout); instead this module keeps 'beam_slots', int32
        [batch, k, max_decode_length]: the cache slot that holds each beam's entry for each
        position. A call sets every beam's slot at cache_index to its own, and beam search
        gives a surviving beam its parent's slots (decoding._reorder_cache), so a step
        reorders 4 bytes per position instead of every layer's keys and values.

        Returns float32 logits [batch, dec_len, vocab].
        """
        cfg = self.config
        y = self.shared_embedding(tokens)
        y = _dropout(cfg, y, deterministic)
        y = nn.with_logical_constraint(y, ("batch", "length", "embed"))
        # One table for the stack, computed once here; with relpos_per_layer each layer has
        # its own and computes its bias itself.
        relpos_bias = (None if cfg.relpos_per_layer
                       else _relative_position_bias(cfg, bidirectional=False))
        if decode:
            if max_decode_length is None:
                raise ValueError("Decoding with a cache (decode=True) needs max_decode_length, "
                                 "the cache length.")
            rows, inputs = tokens.shape[0], encoded.shape[0]
            if rows % inputs:
                raise ValueError(f"{rows} decoder rows for {inputs} encoded rows: each encoded "
                                 "row must serve the same number of consecutive decoder rows "
                                 "(beam search's beams).")
            beams = rows // inputs
            creating = not self.has_variable("cache", "cache_index")
            index_var = self.variable("cache", "cache_index", jnp.zeros, (), jnp.int32)
            cache_index = index_var.value
            if not creating:
                index_var.value = cache_index + 1
            # The current position's row of the causal bias and mask, over the whole cache.
            bias = None if relpos_bias is None else _beam_cache_bias(
                relpos_bias(1, max_decode_length, query_offset=cache_index), beams)
            self_mask = (jnp.arange(max_decode_length) <= cache_index)[None, None, None, :]
            if beams > 1:
                slots_var = self.variable("cache", "beam_slots", jnp.zeros,
                                          (inputs, beams, max_decode_length), jnp.int32)
                slots = slots_var.value.at[:, :, cache_index].set(
                    jnp.arange(beams, dtype=jnp.int32))
                slots_var.value = slots
                self_mask = _beam_slot_mask(slots, cache_index)
            layer_class = DecoderLayer  # nothing to rematerialise without a backward pass
            decode_args = (cache_index, max_decode_length, beams)
        else:
            bias = None if relpos_bias is None else relpos_bias(tokens.shape[1],
                                                                tokens.shape[1])
            layer_class = _maybe_remat(DecoderLayer, cfg, deterministic_argnum=6)
            decode_args = ()
        y = _run_layers(layer_class, cfg, cfg.num_decoder_layers, y, encoded, self_mask,
                        cross_mask, bias, deterministic, *decode_args)
        y = RMSNorm(cfg.activation_dtype, name="decoder_norm")(y)
        y = _dropout(cfg, y, deterministic)
        if cfg.logits_via_embedding:
            # Tied weights: rescale, since the embedding's entries have stddev 1.
            logits = self.shared_embedding.attend(y) / math.sqrt(cfg.emb_dim)
        else:
            # As T5X's logits_dense: inputs, kernel and result in float32 whatever the
            # activation dtype (the loss needs precise logits).
            logits = Dense(cfg.vocab_size, ("embed", "vocab"), jnp.float32,
                           output_dtype=jnp.float32, name="logits_dense")(y)
        return nn.with_logical_constraint(logits, ("batch", "length", "vocab"))


# ----------------------------------------------------------------------------------------
# Masks: bool [batch, 1, q_len, kv_len] (the 1 broadcasts over heads), True = may attend.
# ----------------------------------------------------------------------------------------

def _pair_mask(query: jax.Array, key: jax.Array,
               pair_fn: Callable[[jax.Array, jax.Array], jax.Array] = jnp.logical_and
               ) -> jax.Array:
    """[batch, q_len], [batch, kv_len] -> [batch, 1, q_len, kv_len] of pair_fn(query, key)."""
    return pair_fn(query[:, None, :, None], key[:, None, None, :])


def encoder_self_mask(tokens: jax.Array, segment_ids: jax.Array | None = None) -> jax.Array:
    """Both tokens real (id > 0) and, when packed, in the same segment."""
    mask = _pair_mask(tokens > 0, tokens > 0)
    if segment_ids is not None:
        mask &= _pair_mask(segment_ids, segment_ids, jnp.equal)
    return mask


def decoder_self_mask(target_tokens: jax.Array,
                      segment_ids: jax.Array | None = None) -> jax.Array:
    """Causal, both positions real and, when packed, in the same segment.

    Realness comes from the targets: the shifted-right inputs start each segment with id 0.
    """
    length = target_tokens.shape[1]
    causal = jnp.arange(length)[None, :] <= jnp.arange(length)[:, None]  # [q_len, kv_len]
    mask = _pair_mask(target_tokens > 0, target_tokens > 0) & causal
    if segment_ids is not None:
        mask &= _pair_mask(segment_ids, segment_ids, jnp.equal)
    return mask


def cross_attention_mask(target_tokens: jax.Array, encoder_tokens: jax.Array,
                         decoder_segment_ids: jax.Array | None = None,
                         encoder_segment_ids: jax.Array | None = None) -> jax.Array:
    """Real decoder position to real encoder token, of the same example when packed."""
    if (decoder_segment_ids is None) != (encoder_segment_ids is None):
        raise ValueError("Packed batches need both encoder_segment_ids and decoder_segment_ids "
                         "(or neither, when unpacked); got only one of them.")
    mask = _pair_mask(target_tokens > 0, encoder_tokens > 0)
    if decoder_segment_ids is not None:
        mask &= _pair_mask(decoder_segment_ids, encoder_segment_ids, jnp.equal)
    return mask


# ----------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------

class Transformer(nn.Module):
    """T5 encoder-decoder. Call it, or apply `encode` / `decode` separately.

    Dropout draws from the 'dropout' rng when enable_dropout is True and dropout_rate > 0.
    Positions are accepted for packed batches but not needed: relative attention uses
    in-row offsets, which equal in-segment offsets wherever the mask lets attention through.
    (The one use of encoder_positions: with a soft prompt they locate each packed segment's
    prompt slots.)
    """

    config: T5Config

    def setup(self):
        cfg = self.config
        self.token_embedder = Embed(cfg.vocab_size, cfg.emb_dim, cfg.activation_dtype)
        self.encoder = Encoder(cfg, shared_embedding=self.token_embedder)
        self.decoder = Decoder(cfg, shared_embedding=self.token_embedder)

    def encode(self, encoder_input_tokens: jax.Array,
               encoder_segment_ids: jax.Array | None = None,
               encoder_positions: jax.Array | None = None, *,
               enable_dropout: bool = True) -> jax.Array:
        """int32 [batch, enc_len] tokens (and segment ids) -> [batch, P + enc_len, emb_dim].

        P is prompt_length (0 without a soft prompt): the prompt's outputs come first. A
        packed batch (segment ids given) with a soft prompt already holds P prompt slots at
        the start of every segment (data.PromptSlotsFeatureConverter), found by their
        in-segment encoder_positions < P; the prompt fills them and the output keeps the
        input's length, [batch, enc_len, emb_dim].
        """
        prompt_slot_positions = None
        if self.config.prompt_length and encoder_segment_ids is not None:
            # Packed: every segment starts with prompt_length slots (reserved by
            # data.PromptSlotsFeatureConverter); in-segment positions say which are slots.
            if encoder_positions is None:
                raise ValueError(
                    f"T5Config.prompt_length={self.config.prompt_length} with a packed batch "
                    "needs encoder_positions (which say where each segment's prompt slots "
                    "are); build packed batches with data.PromptSlotsFeatureConverter.")
            prompt_slot_positions = encoder_positions
        mask = encoder_self_mask(self.encoder_key_tokens(encoder_input_tokens,
                                                         encoder_segment_ids),
                                 encoder_segment_ids)
        return self.encoder(encoder_input_tokens, mask, not enable_dropout,
                            prompt_slot_positions)

    def encoder_key_tokens(self, encoder_input_tokens: jax.Array,
                           encoder_segment_ids: jax.Array | None = None) -> jax.Array:
        """What the encoder's output positions stand for, for masks: [batch, P + enc_len].

        The tokens themselves, preceded by prompt_length ones when there is a soft prompt
        (a prompt position is always real, whatever the input's padding). Packed batches
        (segment ids given) hold their prompt slots as real (nonzero) tokens already.
        """
        if not self.config.prompt_length or encoder_segment_ids is not None:
            return encoder_input_tokens
        prompt = jnp.ones((encoder_input_tokens.shape[0], self.config.prompt_length),
                          encoder_input_tokens.dtype)
        return jnp.concatenate([prompt, encoder_input_tokens], axis=1)

    def decode(self, encoded: jax.Array, encoder_input_tokens: jax.Array,
               decoder_input_tokens: jax.Array, decoder_target_tokens: jax.Array,
               encoder_segment_ids: jax.Array | None = None,
               decoder_segment_ids: jax.Array | None = None,
               decoder_positions: jax.Array | None = None, *,
               enable_dropout: bool = True, decode: bool = False,
               max_decode_length: int | None = None) -> jax.Array:
        """Teacher-forced decoder pass, or one step of cached decoding.

        Args:
          encoded: [batch, P + enc_len, emb_dim] from `encode` (P = prompt_length, often 0).
          encoder_input_tokens: int32 [batch, enc_len], for the cross-attention mask.
          decoder_input_tokens: int32 [batch, dec_len], the targets shifted right.
          decoder_target_tokens: int32 [batch, dec_len], for the masks only.
          decode: cached incremental decoding (apply with mutable=['cache']):
            decoder_input_tokens is the one token [batch, 1] at the cache's position, the
            decoder attends to every earlier cached position, and decoder_target_tokens and
            the segment ids are ignored (one example per row; the cross-attention mask comes
            from encoder_input_tokens alone). See Decoder for how the cache is created.
          max_decode_length: with decode, the self-attention cache length.
        Returns:
          float32 logits [batch, dec_len, vocab].
        """
        del decoder_positions  # see the class docstring
        encoder_keys = self.encoder_key_tokens(encoder_input_tokens, encoder_segment_ids)
        if decode:
            self_mask = None  # the Decoder derives it from the cache index
            cross_mask = (encoder_keys > 0)[:, None, None, :]
        else:
            self_mask = decoder_self_mask(decoder_target_tokens, decoder_segment_ids)
            cross_mask = cross_attention_mask(decoder_target_tokens, encoder_keys,
                                              decoder_segment_ids, encoder_segment_ids)
        return self.decoder(encoded, decoder_input_tokens, self_mask, cross_mask,
                            not enable_dropout, decode=decode,
                            max_decode_length=max_decode_length)

    def __call__(self, encoder_input_tokens: jax.Array, decoder_input_tokens: jax.Array,
                 decoder_target_tokens: jax.Array,
                 encoder_segment_ids: jax.Array | None = None,
                 decoder_segment_ids: jax.Array | None = None,
                 encoder_positions: jax.Array | None = None,
                 decoder_positions: jax.Array | None = None, *,
                 enable_dropout: bool = True) -> jax.Array:
        """Full forward pass: int32 [batch, length] features -> float32 [batch, dec_len, vocab]."""
        encoded = self.encode(encoder_input_tokens, encoder_segment_ids, encoder_positions,
                              enable_dropout=enable_dropout)
        return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                           decoder_target_tokens, encoder_segment_ids, decoder_segment_ids,
                           decoder_positions, enable_dropout=enable_dropout)
