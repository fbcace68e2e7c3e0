"""LOSS_NORMALIZING_FACTOR with T5X's meanings (t5x/losses.py):

- None: the summed loss is not normalised (compute_weighted_cross_entropy divides only when a
  factor is given);
- a number: divided by that constant;
- 'NUM_REAL_TARGET_TOKENS': by the sum of the loss weights;
- 'NUM_TOTAL_TARGET_TOKENS': by batch * target length (np.prod of the targets' shape);
- 'AVERAGE_PER_SEQUENCE': each (packed) sequence's loss averaged over its own weights, then the
  weights summed (= the number of sequences) as the normaliser.
The expected values are computed here from those definitions, on per-token losses.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tiny
from flan_jax import trainer
from flan_jax.models import t5
from test_trainer import _batches


def _params(model, batch):
    return jax.tree.map(
        lambda x: getattr(x, "value", x),
        model.init(jax.random.PRNGKey(0), **{k: batch[k][:1] for k in (
            "encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens")},
            enable_dropout=False)["params"], is_leaf=lambda x: hasattr(x, "value"))


def _keep_gradient() -> optax.GradientTransformation:
    """An 'optimizer' whose state is the last gradient it saw, so the test reads it exactly."""
    return optax.GradientTransformation(
        init=lambda params: jax.tree.map(jnp.zeros_like, params),
        update=lambda grads, state, params=None: (jax.tree.map(jnp.zeros_like, grads), grads))


def _objective_grad(model, params, batch, factor, num_microbatches=1):
    """The normalised gradient train_step hands to the optimizer, and its metrics."""
    tx = _keep_gradient()
    state = trainer.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                               opt_state=tx.init(params))
    new_state, metrics = trainer.train_step(
        state, batch, jax.random.PRNGKey(0), model=model, optimizer=tx,
        loss_config=trainer.LossConfig(z_loss=0.0, loss_normalizing_factor=factor),
        num_microbatches=num_microbatches)
    return new_state.opt_state, metrics


def _expected_grad(model, params, batch, token_weight_fn, divisor):
    """d/dparams of sum(per-token loss * token_weight_fn(weights)) / divisor."""
    def objective(p):
        losses = trainer.per_token_losses(p, batch, model=model,
                                          loss_config=trainer.LossConfig(z_loss=0.0))
        return (losses * token_weight_fn(batch)).sum() / divisor
    return jax.grad(objective)(params)


@pytest.fixture(scope="module")
def setup():
    model = t5.Transformer(tiny.model_config())
    lengths = {"inputs": 160, "targets": 128}  # room for several sequences per row
    batch = {k: jnp.asarray(v) for k, v in _batches(pack=True, n_rows=4, lengths=lengths).items()}
    assert batch["decoder_segment_ids"].max() >= 2, "rows should hold several sequences"
    return model, _params(model, batch), batch


def _close(a, b):
    """Equal up to float32 summation order: tolerance relative to each leaf's largest entry."""
    jax.tree.map(lambda x, y: np.testing.assert_allclose(
        x, y, rtol=1e-4, atol=1e-4 * float(np.abs(y).max())), a, b)


def _ones(batch):
    return jnp.ones_like(batch["decoder_target_tokens"], jnp.float32)


def _weights(batch):
    return batch["decoder_loss_weights"].astype(jnp.float32)


def test_none_sums_and_constants_divide(setup):
    model, params, batch = setup
    real_tokens = float(_weights(batch).sum())
    # per_token_losses already carries the loss weights, so the extra factor is 1.
    cases = {
        None: 1.0,
        233472: 233472.0,
        "NUM_REAL_TARGET_TOKENS": real_tokens,
        "num_total_target_tokens": float(batch["decoder_target_tokens"].size),
    }
    for factor, divisor in cases.items():
        got, metrics = _objective_grad(model, params, batch, factor)
        _close(got, _expected_grad(model, params, batch, _ones, divisor))
        # The reported loss stays the mean over real target tokens whatever the factor.
        per_token = trainer.per_token_losses(params, batch, model=model,
                                             loss_config=trainer.LossConfig(z_loss=0.0))
        np.testing.assert_allclose(metrics["loss"], per_token.sum() / real_tokens, rtol=1e-5)


def _per_sequence_expected(batch):
    """Each (row, segment) sequence's weights divided by that sequence's weight sum."""
    weights = np.asarray(_weights(batch))
    segments = np.asarray(batch["decoder_segment_ids"])
    out = np.zeros_like(weights)
    sequences = 0
    for row in range(weights.shape[0]):
        for seg in set(segments[row]) - {0}:
            mask = segments[row] == seg
            out[row][mask] = 1.0 / weights[row][mask].sum()
            sequences += 1
    return jnp.asarray(out), sequences


def test_average_per_sequence_weighs_every_sequence_equally(setup):
    model, params, batch = setup
    per_seq, sequences = _per_sequence_expected(batch)
    got, _ = _objective_grad(model, params, batch, "AVERAGE_PER_SEQUENCE")
    _close(got, _expected_grad(model, params, batch, lambda b: per_seq, float(sequences)))
    # Not the per-token mean: sequences of different lengths weigh differently there.
    per_token, _ = _objective_grad(model, params, batch, "NUM_REAL_TARGET_TOKENS")
    assert not np.allclose(jax.tree.leaves(got)[0], jax.tree.leaves(per_token)[0], rtol=1e-3)


def test_average_per_sequence_unpacked_rows_are_sequences(setup):
    model, params, _ = setup
    batch = {k: jnp.asarray(v) for k, v in _batches(pack=False, n_rows=4).items()}
    row_totals = _weights(batch).sum(-1, keepdims=True)
    got, _ = _objective_grad(model, params, batch, "AVERAGE_PER_SEQUENCE")
    _close(got, _expected_grad(model, params, batch, lambda b: 1.0 / row_totals, 4.0))


@pytest.mark.parametrize("factor", ["AVERAGE_PER_SEQUENCE", "NUM_TOTAL_TARGET_TOKENS", None])
def test_microbatching_keeps_the_normaliser_of_the_whole_batch(setup, factor):
    model, params, batch = setup
    full, _ = _objective_grad(model, params, batch, factor)
    micro, _ = _objective_grad(model, params, batch, factor, num_microbatches=2)
    _close(micro, full)


@pytest.mark.parametrize("bad", ["NUM_REAL_TOKENS", 0, -3.0, True, [1]])
def test_unknown_factor_is_refused_with_t5x_names(bad):
    with pytest.raises(ValueError, match="NUM_REAL_TARGET_TOKENS"):
        trainer.LossConfig(loss_normalizing_factor=bad)
