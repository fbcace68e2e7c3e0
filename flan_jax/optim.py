"""Optimizer and learning-rate schedules: optax Adafactor with T5X's defaults.

T5X fine-tunes T5 with Adafactor: second-moment estimates factored over the two largest
dimensions of each matrix, decay rate 0.8, update clipping at RMS 1.0, updates scaled by the
parameter's RMS, no momentum. optax.adafactor implements exactly that algorithm; this module
only fixes its settings and adds T5X's schedule names.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import optax

SCHEDULES = ("constant", "warmup", "rsqrt")


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
    return optax.adafactor(
        learning_rate=make_schedule(config),
        min_dim_size_to_factor=config.min_dim_size_to_factor,
        decay_rate=config.decay_rate,
        clipping_threshold=config.clipping_threshold,
        multiply_by_parameter_scale=config.multiply_by_parameter_scale,
        weight_decay_rate=config.weight_decay_rate,
    )
