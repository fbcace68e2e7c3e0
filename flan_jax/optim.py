"""Optimizer and learning-rate schedules: optax Adafactor with T5X's defaults.

T5X fine-tunes T5 with Adafactor: second-moment estimates factored over the two largest
dimensions of each matrix, decay rate 0.8, update clipping at RMS 1.0, updates scaled by the
parameter's RMS, no momentum. This module builds optax.adafactor's chain with T5X's settings
and schedule names, with one change for scanned layers (T5Config.scan_layers): a scanned
parameter holds every layer of a stack in one array, and its update clipping and parameter
scale are taken per layer, as T5X's Adafactor does, so a scanned model trains exactly like
the unscanned one. (The factored second moments are per layer already: the layer axis sits
between the two wide axes that Adafactor factors over.) Unscanned parameters get exactly
optax.adafactor's computation, except that on CPU, on arrays of at least LARGE_REDUCTION_SIZE
elements the factored second moments' mean over the leading axis is a vector-matrix
product, which XLA:CPU runs several times faster (see _mean); that differs only in float
rounding.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import numerics

from flan_jax.models import t5

SCHEDULES = ("constant", "warmup", "rsqrt")
# Arrays this large (bench-cpu: the 32,128 x 256 embedding and output projection) take
# Adafactor's leading-axis mean as a product with ones; smaller ones keep jnp.mean (it ran
# as fast on bench-cpu's [256, 1024] kernels, and stays bit-identical to optax's).
LARGE_REDUCTION_SIZE = 1 << 20


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Adafactor and its learning-rate schedule.

    Attributes:
      learning_rate: the base rate. For "constant" and "warmup" it is the plateau; for "rsqrt"
        it multiplies 1/sqrt(max(step, warmup_steps)) as in T5X's `constant * rsqrt_decay`
        (T5 pre-training used learning_rate=1.0, warmup_steps=10_000).
      schedule: "constant"; "warmup" (linear from 0 over warmup_steps, then constant); "rsqrt".
      warmup_steps: length of the linear warmup, or the rsqrt plateau.
      decay_rate, clipping_threshold, multiply_by_parameter_scale, min_dim_size_to_factor:
        Adafactor settings, T5X defaults.
      weight_decay_rate: optional decoupled weight decay (off in T5X fine-tuning).
    """

    learning_rate: float = 1e-3
    schedule: str = "constant"
    warmup_steps: int = 0
    decay_rate: float = 0.8
    clipping_threshold: float | None = 1.0
    multiply_by_parameter_scale: bool = True
    min_dim_size_to_factor: int = 128
    weight_decay_rate: float | None = None

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"Unknown learning-rate schedule {self.schedule!r}; choose one of {SCHEDULES}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        if self.schedule == "warmup" and self.warmup_steps == 0:
            raise ValueError('schedule="warmup" needs warmup_steps > 0.')


def make_schedule(config: OptimizerConfig) -> optax.Schedule:
    """Learning rate as a function of the (0-based) step."""
    lr, warmup = config.learning_rate, config.warmup_steps
    if config.schedule == "constant":
        return optax.constant_schedule(lr)
    if config.schedule == "warmup":
        return lambda step: lr * jnp.minimum(1.0, (step + 1) / warmup)
    # rsqrt: flat at lr/sqrt(warmup) until warmup_steps, then decays as 1/sqrt(step).
    return lambda step: lr / jnp.sqrt(jnp.maximum(step + 1, max(warmup, 1)))


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """optax.adafactor's chain (its order, its state), block RMS taken per scanned layer."""
    tx = [_scale_by_factored_rms(config.decay_rate, config.min_dim_size_to_factor)]
    if config.clipping_threshold is not None:
        tx.append(_clip_by_layer_rms(config.clipping_threshold))
    tx.append(optax.scale_by_learning_rate(make_schedule(config), flip_sign=False))
    if config.multiply_by_parameter_scale:
        tx.append(_scale_by_param_layer_rms())
    if config.weight_decay_rate is not None:
        tx.append(optax.add_decayed_weights(config.weight_decay_rate))
    tx.append(optax.scale(-1))
    chain = optax.chain(*tx)

    def init(params):
        _check_layers_not_factored(params, config.min_dim_size_to_factor)
        return chain.init(params)

    return optax.GradientTransformation(init, chain.update)


def _mean(x: jax.Array, axis: int) -> jax.Array:
    """jnp.mean(x, axis); over the leading axis of a large x, as a vector-matrix product.

    XLA:CPU (jaxlib 0.10.2) hands reductions to YNNPACK, which is slow over a leading axis:
    the mean over the 256 rows of the [256, 32128] output projection's squared gradient took
    69 ms as a reduce and 10 ms as ones [256] . x, and the whole bench-cpu optimizer update
    (tools/bench_matmul.py --optimizer) 174-280 -> 113-127 ms, best of 15 on a loaded machine
    (2026-11-30). The product reads x once, as the reduce does, and adds 2 FLOPs per element;
    a different summation order: the result differs from jnp.mean's only in float rounding.
    On CPU only (platform_dependent); other platforms keep jnp.mean.
    """
    if axis != 0 or x.size < LARGE_REDUCTION_SIZE:
        return jnp.mean(x, axis=axis)

    def product_with_ones(x):
        ones = jnp.ones((x.shape[0],), x.dtype)
        return jnp.dot(ones, x, precision=jax.lax.Precision.HIGHEST) / x.shape[0]

    # Only where it pays: lowered for a TPU (flan_jax.aot on a CPU host included) the mean
    # stays optax's reduce, bit for bit.
    return jax.lax.platform_dependent(x, cpu=product_with_ones,
                                      default=lambda x: jnp.mean(x, axis=0))


def _scale_by_factored_rms(decay_rate: float, min_dim_size_to_factor: int,
                           epsilon: float = 1e-30) -> optax.GradientTransformation:
    """optax.scale_by_factored_rms (its state, its arithmetic in its order), with _mean.

    Second moments of a matrix are factored into a row and a column mean of the squared
    gradient (over the two largest axes); smaller arrays keep a full second moment.
    """
    reference = optax.scale_by_factored_rms(decay_rate=decay_rate,
                                            min_dim_size_to_factor=min_dim_size_to_factor,
                                            epsilon=epsilon)

    def factored_dims(shape: tuple[int, ...]) -> tuple[int, int] | None:
        """(second largest, largest) axis, or None when the array is not factored."""
        if len(shape) < 2:
            return None
        order = np.argsort(shape)
        if shape[order[-2]] < min_dim_size_to_factor:
            return None
        return int(order[-2]), int(order[-1])

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("Adafactor's factored second moments need the params: call "
                             "update(grads, state, params).")
        # optax's power decay: 1 - (step + 1) ** -decay_rate.
        decay = 1.0 - jnp.array(state.count + 1, jnp.float32) ** (-decay_rate)
        zero = lambda dtype: jnp.zeros((1,), dtype)

        def one(grad, v_row, v_col, v, param):
            dtype = param.dtype
            grad_sqr = numerics.abs_sq(grad) + epsilon
            dims = factored_dims(param.shape)
            if dims is None:
                new_v = (decay * v + (1.0 - decay) * grad_sqr).astype(dtype)
                return grad * new_v ** -0.5, zero(dtype), zero(dtype), new_v
            d1, d0 = dims
            new_v_row = (decay * v_row + (1.0 - decay) * _mean(grad_sqr, d0)).astype(dtype)
            new_v_col = (decay * v_col + (1.0 - decay) * _mean(grad_sqr, d1)).astype(dtype)
            row_col_mean = jnp.mean(new_v_row, axis=d1 - 1 if d1 > d0 else d1, keepdims=True)
            row_factor = (new_v_row / row_col_mean) ** -0.5
            col_factor = new_v_col ** -0.5
            scaled = (grad * jnp.expand_dims(row_factor, axis=d0)
                      * jnp.expand_dims(col_factor, axis=d1))
            return scaled, new_v_row, new_v_col, zero(dtype)

        results = jax.tree.map(one, grads, state.v_row, state.v_col, state.v, params)
        is_result = lambda x: isinstance(x, tuple) and len(x) == 4
        pick = lambda i: jax.tree.map(lambda r: r[i], results, is_leaf=is_result)
        new_state = optax.FactoredState(count=numerics.safe_increment(state.count),
                                        v_row=pick(1), v_col=pick(2), v=pick(3))
        return pick(0), new_state

    return optax.GradientTransformation(reference.init, update)


def _layer_axis(path) -> int | None:
    """t5.PARAM_SCAN_AXIS for a scanned layer parameter ('encoder/layers/...'), else None."""
    keys = tuple(str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey))
    return t5.PARAM_SCAN_AXIS if t5.is_scanned_layer_param(keys) else None


def _rms_per_layer(x: jax.Array, axis: int | None) -> jax.Array:
    """RMS over the whole array (axis None, exactly optax's), or per index of `axis`."""
    if axis is None:
        return jnp.sqrt(jnp.mean(numerics.abs_sq(x)))
    others = tuple(a for a in range(x.ndim) if a != axis)
    return jnp.sqrt(jnp.mean(numerics.abs_sq(x), axis=others, keepdims=True))


def _clip_by_layer_rms(threshold: float) -> optax.GradientTransformation:
    """optax.clip_by_block_rms, a scanned parameter's layers clipped one by one."""

    def update(updates, state, params=None):
        del params
        clip = lambda path, u: u / jnp.maximum(1.0, _rms_per_layer(u, _layer_axis(path))
                                               / threshold)
        return jax.tree_util.tree_map_with_path(clip, updates), state

    return optax.GradientTransformation(optax.init_empty_state, update)


def _scale_by_param_layer_rms(min_scale: float = 1e-3) -> optax.GradientTransformation:
    """optax.scale_by_param_block_rms, a scanned parameter's layers scaled one by one."""

    def update(updates, state, params):
        if params is None:
            raise ValueError("Adafactor's parameter scale needs the params: call "
                             "update(grads, state, params).")

        def scale(path, u, p):
            axis = _layer_axis(path)
            if axis is None:
                return u * numerics.safe_root_mean_squares(p, min_scale)
            return u * jnp.maximum(_rms_per_layer(p, axis), min_scale)

        return jax.tree_util.tree_map_with_path(scale, updates, params), state

    return optax.GradientTransformation(optax.init_empty_state, update)


def _check_layers_not_factored(params, min_dim_size_to_factor: int) -> None:
    """Refuses a scanned stack so deep that Adafactor would factor its second moments over
    the layer axis (they would then mix layers)."""

    def check(path, p):
        axis = _layer_axis(path)
        if axis is not None and p.ndim > 2 and p.shape[axis] >= min_dim_size_to_factor:
            raise ValueError(
                f"A scanned stack has {p.shape[axis]} layers, at least Adafactor's "
                f"min_dim_size_to_factor={min_dim_size_to_factor}, so its second moments "
                "could be factored over the layer axis. Use scan_layers=False or raise "
                "min_dim_size_to_factor above the number of layers.")

    jax.tree_util.tree_map_with_path(check, params)
