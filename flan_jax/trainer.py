"""Pure train and eval step functions, the loss, and the train state.

Nothing here knows about files or gin. The step functions are pure and tests call them
directly; build_train_program (at the end) is the one place that jits train_step with explicit
shardings for a mesh, shared by flan_jax.train, tools/bench.py and flan_jax.aot.

Batches are dicts of int32 arrays as produced by seqio's EncDecFeatureConverter:
  encoder_input_tokens, decoder_input_tokens, decoder_target_tokens, decoder_loss_weights
  [batch, length], and when packed also encoder/decoder_segment_ids and _positions.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping

import flax.linen
import flax.struct
import jax
import jax.numpy as jnp
import optax

from flan_jax import partitioning, peft
from flan_jax.models import t5

Batch = Mapping[str, jax.Array]
MODEL_INPUT_FEATURES = (
    "encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens",
    "encoder_segment_ids", "decoder_segment_ids", "encoder_positions", "decoder_positions")


class TrainState(flax.struct.PyTreeNode):
    """Everything a checkpoint must hold to continue training bit-for-bit.

    With parameter-efficient tuning (flan_jax/peft.py) params holds only the trainable part
    (soft prompt, LoRA factors); the frozen base travels beside it, never in the state.
    """

    step: jax.Array  # int32 scalar: number of updates applied so far
    params: Any
    opt_state: optax.OptState


# T5X's special loss normalizing factors (t5x/losses.py SpecialLossNormalizingFactor), by name.
NUM_REAL_TARGET_TOKENS = "NUM_REAL_TARGET_TOKENS"    # sum of the loss weights in the batch
NUM_TOTAL_TARGET_TOKENS = "NUM_TOTAL_TARGET_TOKENS"  # batch * target length, padding included
AVERAGE_PER_SEQUENCE = "AVERAGE_PER_SEQUENCE"        # mean over sequences of each one's mean
SPECIAL_LOSS_NORMALIZING_FACTORS = (NUM_REAL_TARGET_TOKENS, NUM_TOTAL_TARGET_TOKENS,
                                    AVERAGE_PER_SEQUENCE)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """T5X's loss options, with T5X's meanings.

    Attributes:
      z_loss: coefficient of log(Z)^2, which keeps the softmax normalizer near 1 (T5X 1e-4).
      label_smoothing: mass spread uniformly over the other vocabulary entries.
      loss_normalizing_factor: what the summed token loss of the global batch is divided by,
        as in t5x/losses.py: None -> nothing (the plain sum, T5X's default); a number -> that
        constant; 'NUM_REAL_TARGET_TOKENS' -> the sum of the loss weights (a per-token mean;
        flan_jax's default, see gin_configs/runs/finetune.gin); 'NUM_TOTAL_TARGET_TOKENS' ->
        batch * target length; 'AVERAGE_PER_SEQUENCE' -> each packed sequence's loss is first
        averaged over its own tokens, then the sequences are averaged, so every example weighs
        the same whatever its length. Names are case-insensitive, as in T5X.
    """

    z_loss: float = 1e-4
    label_smoothing: float = 0.0
    loss_normalizing_factor: float | str | None = NUM_REAL_TARGET_TOKENS

    def __post_init__(self):
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}.")
        if self.z_loss < 0:
            raise ValueError(f"z_loss must be >= 0, got {self.z_loss}.")
        factor = self.loss_normalizing_factor
        if isinstance(factor, str):
            if factor.upper() not in SPECIAL_LOSS_NORMALIZING_FACTORS:
                raise ValueError(
                    f"LOSS_NORMALIZING_FACTOR {factor!r} is not one of T5X's names "
                    f"{SPECIAL_LOSS_NORMALIZING_FACTORS}; use one of them, a positive number, "
                    "or None (no normalisation: the summed loss, as T5X).")
            object.__setattr__(self, "loss_normalizing_factor", factor.upper())
        elif factor is not None and (isinstance(factor, bool)
                                     or not isinstance(factor, (int, float)) or not factor > 0):
            raise ValueError(
                f"LOSS_NORMALIZING_FACTOR must be None, a positive number or one of "
                f"{SPECIAL_LOSS_NORMALIZING_FACTORS}, got {factor!r}.")


def target_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """logits[b, l, targets[b, l]]: [batch, length, vocab], [batch, length] -> [batch, length].

    An iota compare, select and sum over the vocabulary rather than take_along_axis: XLA fuses
    it into one pass over the logits (and its gradient into an elementwise select), where the
    gather and its scatter gradient cost separate passes on CPU (bench-cpu 2.51 -> 2.40 s per
    step, measured 2026-11-30). Exactly one entry per row is selected, so the sum is exact. No
    one-hot [batch, length, vocab] array is materialised.
    """
    vocab_ids = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
    return jnp.sum(jnp.where(vocab_ids == targets[..., None], logits, 0.0), axis=-1)


@jax.custom_vjp
def log_z_and_target_logit(logits: jax.Array, targets: jax.Array
                           ) -> tuple[jax.Array, jax.Array]:
    """(logsumexp(logits), logits at the target): [batch, length, vocab] -> 2 x [batch, length].

    The two per-token statistics of the logits that the cross entropy and z-loss need, with a
    hand-written gradient: g_log_z * softmax(logits) + g_target * one_hot(targets), built in
    one elementwise pass over the logits. Left to autodiff, the gradients of logsumexp and of
    the target select each materialise a [batch, length, vocab] array and a further pass adds
    them (T5X's loss has a custom gradient for the same reason). The forward values are those
    of jax.nn.logsumexp and target_logits; the gradient differs from autodiff's only in float
    rounding (softmax as exp(logits - log_z) instead of exp(logits - max) / sum).
    """
    return jax.nn.logsumexp(logits, axis=-1), target_logits(logits, targets)


def _log_z_and_target_logit_fwd(logits, targets):
    log_z, target = log_z_and_target_logit(logits, targets)
    return (log_z, target), (logits, targets, log_z)


def _log_z_and_target_logit_bwd(residuals, cotangents):
    logits, targets, log_z = residuals
    g_log_z, g_target = cotangents
    vocab_ids = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
    softmax = jnp.exp(logits - log_z[..., None])
    g_logits = (softmax * g_log_z[..., None]
                + jnp.where(vocab_ids == targets[..., None], g_target[..., None], 0.0))
    return g_logits.astype(logits.dtype), None  # integer targets have no gradient


log_z_and_target_logit.defvjp(_log_z_and_target_logit_fwd, _log_z_and_target_logit_bwd)


def token_cross_entropy(logits: jax.Array, targets: jax.Array, label_smoothing: float = 0.0,
                        z_loss: float = 0.0) -> tuple[jax.Array, jax.Array]:
    """Per-token cross entropy (with label smoothing) and z-loss.

    Args:
      logits: [batch, length, vocab] float32.
      targets: [batch, length] int32 token ids.
    Returns:
      (loss, z_loss), each [batch, length]; loss already includes z_loss. With label
      smoothing the loss is shifted by the entropy of the smoothed target distribution so
      that a perfect prediction scores 0, as in T5X.
    """
    loss, z, _ = _cross_entropy_and_target_logit(logits, targets, label_smoothing, z_loss)
    return loss, z


def _cross_entropy_and_target_logit(logits: jax.Array, targets: jax.Array,
                                    label_smoothing: float, z_loss: float
                                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """token_cross_entropy's (loss, z_loss) and the target logit, each [batch, length]."""
    vocab = logits.shape[-1]
    log_z, target_logit = log_z_and_target_logit(logits, targets)
    # target_logit - log_z is the target's log-probability: the same single subtraction as
    # selecting from logits - log_z, so the value is bit-identical to that formulation.
    target_log_prob = target_logit - log_z
    if label_smoothing:
        confidence = 1.0 - label_smoothing
        low = label_smoothing / (vocab - 1)
        log_probs_sum = jnp.sum(logits - log_z[..., None], axis=-1)
        loss = -((confidence - low) * target_log_prob + low * log_probs_sum)
        entropy = -(confidence * jnp.log(confidence) + (vocab - 1) * low * jnp.log(low + 1e-20))
        loss -= entropy
    else:
        loss = -target_log_prob
    z = z_loss * jnp.square(log_z)
    return loss + z, z, target_logit


def _model_inputs(batch: Batch) -> dict[str, jax.Array]:
    return {k: batch[k] for k in MODEL_INPUT_FEATURES if k in batch}


def _loss_weights(batch: Batch) -> jax.Array:
    if "decoder_loss_weights" in batch:
        return batch["decoder_loss_weights"].astype(jnp.float32)
    return (batch["decoder_target_tokens"] > 0).astype(jnp.float32)


def _per_sequence_weights(weights: jax.Array, batch: Batch) -> jax.Array:
    """[batch, length] weights divided by their sum over each (packed) sequence.

    What T5X's AVERAGE_PER_SEQUENCE weights the loss with: every sequence's weights then sum
    to 1. Packed rows hold several sequences, told apart by decoder_segment_ids (0 = padding).
    """
    if "decoder_segment_ids" not in batch:
        totals = weights.sum(axis=-1, keepdims=True)
    else:
        segments = batch["decoder_segment_ids"]
        length = segments.shape[-1]

        def row_totals(w, seg):
            per_segment = jax.ops.segment_sum(w, seg, num_segments=length + 1)
            return per_segment[seg]
        totals = jax.vmap(row_totals)(weights, segments)
    return jnp.where(totals > 0, weights / jnp.where(totals > 0, totals, 1.0), 0.0)


def loss_sums(params: Any, batch: Batch, *, model: t5.Transformer, loss_config: LossConfig,
              dropout_rng: jax.Array | None, frozen_params: Any = None
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Summed (not yet normalised) loss over a batch, plus summed statistics.

    frozen_params: with parameter-efficient tuning, the frozen base that `params` (the
    trainable part, what gradients are taken of) completes.
    Returns (objective, stats). stats = {loss, z_loss, correct, tokens, input_tokens,
    objective_weight} are scalar sums, so microbatches and hosts can be added up before
    normalising. The objective is the loss summed with the weights the normalising factor asks
    for (the loss weights; per-sequence weights for AVERAGE_PER_SEQUENCE), objective_weight the
    sum of those weights; stats["loss"] always sums the loss over real target tokens.
    """
    if frozen_params is not None:
        params = peft.merge(params, frozen_params)
    logits = model.apply(
        {"params": params}, **_model_inputs(batch),
        enable_dropout=dropout_rng is not None,
        rngs={"dropout": dropout_rng} if dropout_rng is not None else None)
    targets = batch["decoder_target_tokens"]
    weights = _loss_weights(batch)
    loss, z, target_logit = _cross_entropy_and_target_logit(
        logits, targets, loss_config.label_smoothing, loss_config.z_loss)
    # Correct when the target's logit is the largest: the same as argmax == target except on
    # exact ties, and it reuses the loss's target logit instead of an argmax pass.
    correct = (target_logit >= logits.max(axis=-1)).astype(jnp.float32)
    stats = {
        "loss": (loss * weights).sum(),
        "z_loss": (z * weights).sum(),
        "correct": (correct * weights).sum(),
        "tokens": weights.sum(),
        "input_tokens": (batch["encoder_input_tokens"] > 0).sum().astype(jnp.float32),
    }
    if loss_config.loss_normalizing_factor == AVERAGE_PER_SEQUENCE:
        objective_weights = _per_sequence_weights(weights, batch)
        objective = (loss * objective_weights).sum()
        stats["objective_weight"] = objective_weights.sum()
    else:
        objective = stats["loss"]
        stats["objective_weight"] = stats["tokens"]
    return objective, stats


def per_token_losses(params: Any, batch: Batch, *, model: t5.Transformer,
                     loss_config: LossConfig) -> jax.Array:
    """[batch, length] loss per target token (0 where the loss weight is 0), no dropout."""
    logits = model.apply({"params": params}, **_model_inputs(batch), enable_dropout=False)
    loss, _ = token_cross_entropy(logits, batch["decoder_target_tokens"],
                                  loss_config.label_smoothing, loss_config.z_loss)
    return loss * _loss_weights(batch)


def _split_microbatches(batch: Batch, num_microbatches: int) -> Batch:
    """[batch, ...] -> [num_microbatches, batch // num_microbatches, ...].

    Microbatch m takes rows m, m + M, m + 2M, ...: reshaping to [batch/M, M] keeps each
    device's contiguous block of rows on that device, so no data moves between devices.
    """
    def split(x):
        x = x.reshape((x.shape[0] // num_microbatches, num_microbatches) + x.shape[1:])
        return jnp.swapaxes(x, 0, 1)
    return jax.tree.map(split, batch)


def _normaliser(stats: Mapping[str, jax.Array], loss_config: LossConfig,
                batch: Batch) -> jax.Array:
    """What the summed objective of the global batch is divided by (LossConfig)."""
    factor = loss_config.loss_normalizing_factor
    if factor is None:
        return jnp.ones((), jnp.float32)
    if factor == NUM_TOTAL_TARGET_TOKENS:
        return jnp.asarray(batch["decoder_target_tokens"].size, jnp.float32)
    if factor in (NUM_REAL_TARGET_TOKENS, AVERAGE_PER_SEQUENCE):
        # A batch of padding only has nothing to learn from; avoid dividing by zero.
        return jnp.maximum(stats["objective_weight"], 1.0)
    return jnp.asarray(factor, jnp.float32)


def train_step(state: TrainState, batch: Batch, dropout_key: jax.Array,
               frozen_params: Any = None, *, model: t5.Transformer,
               optimizer: optax.GradientTransformation, loss_config: LossConfig,
               num_microbatches: int = 1) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer update on a global batch; gradients optionally accumulated.

    The gradient of the summed loss is accumulated over microbatches and divided once by the
    normaliser of the whole batch, so num_microbatches changes memory use, not the update.
    dropout_key is folded with the step, so a resumed run draws the same dropout masks.
    frozen_params: with parameter-efficient tuning, the frozen base params; state.params is
    then the trainable part only and the only thing updated (None: full fine-tuning).

    Returns the new state and scalar metrics
    {loss, z_loss, accuracy, tokens, input_tokens, grad_norm}.
    """
    step_key = jax.random.fold_in(dropout_key, state.step)
    grad_fn = jax.grad(loss_sums, has_aux=True)

    def microbatch_grads(micro, index):
        rng = jax.random.fold_in(step_key, index) if model.config.dropout_rate > 0 else None
        return grad_fn(state.params, micro, model=model, loss_config=loss_config,
                       dropout_rng=rng, frozen_params=frozen_params)

    if num_microbatches == 1:
        grads, stats = microbatch_grads(batch, 0)
    else:
        micro = _split_microbatches(batch, num_microbatches)

        def accumulate(carry, xs):
            micro_batch, index = xs
            grads, stats = microbatch_grads(micro_batch, index)
            return jax.tree.map(jnp.add, carry, (grads, stats)), None

        stat_names = ("loss", "z_loss", "correct", "tokens", "input_tokens",
                      "objective_weight")
        zeros = jax.tree.map(jnp.zeros_like, (state.params, dict.fromkeys(stat_names, 0.0)))
        (grads, stats), _ = jax.lax.scan(
            accumulate, zeros, (micro, jnp.arange(num_microbatches)))

    normaliser = _normaliser(stats, loss_config, batch)
    grads = jax.tree.map(lambda g: g / normaliser, grads)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, _summarise(stats, grads)


def _summarise(stats: Mapping[str, jax.Array], grads: Any) -> dict[str, jax.Array]:
    tokens = jnp.maximum(stats["tokens"], 1.0)
    metrics = {
        "loss": stats["loss"] / tokens,  # per real target token, whatever the normaliser
        "z_loss": stats["z_loss"] / tokens,
        "accuracy": stats["correct"] / tokens,
        "tokens": stats["tokens"],  # real target tokens
        "input_tokens": stats["input_tokens"],  # real (non-padding) input tokens
    }
    if grads is not None:
        metrics["grad_norm"] = optax.global_norm(grads)
    return metrics


def eval_step(params: Any, batch: Batch, *, model: t5.Transformer,
              loss_config: LossConfig) -> dict[str, jax.Array]:
    """Teacher-forced loss and token accuracy on one batch, no dropout (all params)."""
    _, stats = loss_sums(params, batch, model=model, loss_config=loss_config, dropout_rng=None)
    return _summarise(stats, None)


# ---------------------------------------------------------------------------- state layout
@flax.struct.dataclass
class StateLayout:
    """Where every leaf of the TrainState lives, known before any array exists.

    abstract: TrainState of jax.ShapeDtypeStruct carrying shardings (what Orbax restores into).
    shardings: TrainState of NamedSharding (jit in/out shardings).
    frozen_abstract / frozen_shardings: with parameter-efficient tuning, the same for the
      frozen base params (not in the TrainState); None for full fine-tuning.
    """

    abstract: TrainState
    shardings: TrainState
    frozen_abstract: Any = None
    frozen_shardings: Any = None

    @property
    def param_shardings(self) -> Any:
        """Shardings of the whole parameter tree (trainable and frozen): what eval uses."""
        if self.frozen_shardings is None:
            return self.shardings.params
        return peft.merge(self.shardings.params, self.frozen_shardings)


def _init_params(model: t5.Transformer, rng: jax.Array) -> Any:
    # Parameter shapes do not depend on batch size or sequence lengths.
    tokens = jnp.ones((1, 8), jnp.int32)
    return model.init(rng, encoder_input_tokens=tokens, decoder_input_tokens=tokens,
                      decoder_target_tokens=tokens, enable_dropout=False)["params"]


def state_layout(model: t5.Transformer, optimizer: optax.GradientTransformation,
                 mesh: jax.sharding.Mesh, rules) -> StateLayout:
    """eval_shape(init) -> logical specs -> mesh shardings, for params and optimizer state.

    With parameter-efficient tuning the state's params (and so the optimizer state) are the
    trainable part only; the frozen base gets its own abstract tree and shardings.
    """
    boxed = jax.eval_shape(functools.partial(_init_params, model), jax.random.PRNGKey(0))
    abstract_params = flax.linen.unbox(boxed)
    param_specs = flax.linen.get_partition_spec(boxed)
    frozen_abstract = frozen_shardings = None
    if peft.is_peft(model.config):
        abstract_params, frozen_params = peft.split(abstract_params, model.config)
        param_specs, frozen_specs = peft.split(param_specs, model.config)
        frozen_shardings = partitioning.logical_to_shardings(frozen_specs, mesh, rules)
        frozen_abstract = partitioning.shard_abstract_tree(frozen_params, frozen_shardings)
    abstract_opt_state = jax.eval_shape(optimizer.init, abstract_params)
    specs = TrainState(
        step=jax.sharding.PartitionSpec(), params=param_specs,
        opt_state=partitioning.optimizer_state_specs(
            abstract_opt_state, abstract_params, param_specs))
    shardings = partitioning.logical_to_shardings(specs, mesh, rules)
    abstract = partitioning.shard_abstract_tree(
        TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=abstract_params,
                   opt_state=abstract_opt_state), shardings)
    return StateLayout(abstract=abstract, shardings=shardings, frozen_abstract=frozen_abstract,
                       frozen_shardings=frozen_shardings)


def init_train_state(model: t5.Transformer, optimizer: optax.GradientTransformation,
                     layout: StateLayout, seed: int, frozen_params: Any = None,
                     vocabulary: Any = None) -> TrainState:
    """Random init, created directly in its final sharding (no full copy on one device).

    With parameter-efficient tuning only the trainable part is kept (LoRA: lora_a random,
    lora_b zero); a soft prompt is then drawn from the embedding table of frozen_params
    (the base; see peft.initial_prompt, which uses `vocabulary` for class-label init).
    Call inside partitioning.sharding_context(mesh, rules) so activation constraints apply.
    """
    def init(rng):
        params = flax.linen.unbox(_init_params(model, rng))
        if peft.is_peft(model.config):
            params = peft.split(params, model.config)[0]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state=optimizer.init(params))
    rng = jax.random.PRNGKey(seed)
    state = jax.jit(init, out_shardings=layout.shardings)(rng)
    if model.config.prompt_length and frozen_params is not None:
        embedding = frozen_params["token_embedder"]["embedding"]
        prompt = peft.initial_prompt(embedding, model.config, jax.random.fold_in(rng, 1),
                                     vocabulary)
        params = dict(state.params)
        params["encoder"] = {**params["encoder"], "prompt": jax.device_put(
            prompt, layout.shardings.params["encoder"]["prompt"])}
        # Adafactor's state holds statistics of shapes, not parameter values: still valid.
        state = state.replace(params=params)
    return state


# ---------------------------------------------------------------------------- assembly
@dataclasses.dataclass(frozen=True)
class TrainProgram:
    """The one assembly of model, optimizer, state layout and jitted train step.

    flan_jax.train, tools/bench.py and flan_jax.aot all build their step here, so what is
    benchmarked or compiled for a TPU slice is exactly what trains.

    Attributes:
      mesh / rules: the ('data', 'model') mesh and the logical-axis rules; trace and run
        init and step calls inside `with program.sharding_context():`.
      model, optimizer, loss_config: what train_step is closed over.
      layout: abstract state and shardings (StateLayout).
      batch_sharding / replicated: shardings of batch arrays and of scalars / keys.
      step_fn: jit(train_step) with in/out shardings and the state donated;
        step_fn(state, batch, dropout_key) -> (state, metrics). With parameter-efficient
        tuning (is_peft) it is step_fn(state, batch, dropout_key, frozen_params): the frozen
        base is an input with its own shardings, not donated and not returned.
    """

    mesh: jax.sharding.Mesh
    rules: Any
    model: t5.Transformer
    optimizer: optax.GradientTransformation
    loss_config: LossConfig
    layout: StateLayout
    batch_sharding: jax.sharding.NamedSharding
    replicated: jax.sharding.NamedSharding
    step_fn: Any

    def sharding_context(self):
        """partitioning.sharding_context on this program's mesh and rules."""
        return partitioning.sharding_context(self.mesh, self.rules)

    @property
    def num_params(self) -> int:
        """All parameters of the model, trainable and frozen."""
        return self.num_trainable_params + peft.count(self.layout.frozen_abstract or {})

    @property
    def num_trainable_params(self) -> int:
        """Parameters with optimizer state (all of them for full fine-tuning)."""
        return peft.count(self.layout.abstract.params)

    @property
    def is_peft(self) -> bool:
        """Parameter-efficient: step_fn then takes the frozen base as a 4th argument."""
        return self.layout.frozen_abstract is not None

    def abstract_batch(self, batch_size: int, feature_lengths: Mapping[str, int],
                       packed: bool = True) -> dict[str, jax.ShapeDtypeStruct]:
        """The step's batch as shapes: what EncDecFeatureConverter yields for these lengths.

        Returns int32 ShapeDtypeStructs [batch_size, inputs] for encoder_* features and
        [batch_size, targets] for decoder_* features, carrying the batch sharding. Packed
        with a soft prompt, the encoder features hold prompt_length slots more
        (data.PromptSlotsFeatureConverter).
        """
        slots = self.model.config.prompt_length if packed else 0
        lengths = {"encoder": feature_lengths["inputs"] + slots,
                   "decoder": feature_lengths["targets"]}
        names = ["encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens",
                 "decoder_loss_weights"]
        if packed:
            names += ["encoder_segment_ids", "decoder_segment_ids", "encoder_positions",
                      "decoder_positions"]
        return {name: jax.ShapeDtypeStruct((batch_size, lengths[name.split("_")[0]]),
                                           jnp.int32, sharding=self.batch_sharding)
                for name in names}

    def abstract_key(self) -> jax.ShapeDtypeStruct:
        """The dropout key as a shape (its size depends on the configured PRNG impl)."""
        key = jax.eval_shape(jax.random.PRNGKey, 0)
        return jax.ShapeDtypeStruct(key.shape, key.dtype, sharding=self.replicated)

    def init_state(self, seed: int, frozen_params: Any = None,
                   vocabulary: Any = None) -> TrainState:
        """Random init in its final sharding (see init_train_state)."""
        with self.sharding_context():
            return init_train_state(self.model, self.optimizer, self.layout, seed,
                                    frozen_params, vocabulary)

    def init_frozen(self, seed: int) -> Any:
        """Parameter-efficient only: a randomly initialised frozen base, in its sharding.

        For benchmarks, compilation and tests; real runs load the base from a checkpoint.
        """
        def init(rng):
            params = flax.linen.unbox(_init_params(self.model, rng))
            return peft.split(params, self.model.config)[1]
        with self.sharding_context():
            return jax.jit(init, out_shardings=self.layout.frozen_shardings)(
                jax.random.PRNGKey(seed))


def build_train_program(model_config: t5.T5Config, optimizer: optax.GradientTransformation,
                        loss_config: LossConfig, mesh: jax.sharding.Mesh,
                        parameter_sharding: bool = False,
                        num_microbatches: int = 1) -> TrainProgram:
    """Model, layout and jit(train_step) for a mesh; nothing is initialised or compiled yet.

    The mesh may hold real devices or the abstract devices of a TPU topology (flan_jax.aot):
    only shapes are derived here.
    """
    model = t5.Transformer(model_config)
    rules = partitioning.logical_axis_rules(parameter_sharding)
    layout = state_layout(model, optimizer, mesh, rules)
    batch_sharding = partitioning.batch_sharding(mesh)
    replicated = partitioning.replicated(mesh)
    in_shardings = (layout.shardings, batch_sharding, replicated)
    if layout.frozen_shardings is not None:
        # Full fine-tuning keeps its three-argument step (and its compiled program) as is.
        in_shardings += (layout.frozen_shardings,)
    step_fn = jax.jit(
        functools.partial(train_step, model=model, optimizer=optimizer,
                          loss_config=loss_config, num_microbatches=num_microbatches),
        in_shardings=in_shardings,
        out_shardings=(layout.shardings, replicated),
        donate_argnums=(0,))
    return TrainProgram(mesh=mesh, rules=rules, model=model, optimizer=optimizer,
                        loss_config=loss_config, layout=layout, batch_sharding=batch_sharding,
                        replicated=replicated, step_fn=step_fn)
