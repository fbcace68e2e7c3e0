"""Loss math, gradient accumulation, and packing-invariance of the per-example loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio

import tiny
from flan_jax import optim, trainer
from flan_jax.models import t5


def _naive_cross_entropy(logits, targets, label_smoothing, z_loss):
    vocab = logits.shape[-1]
    confidence = 1 - label_smoothing
    low = label_smoothing / (vocab - 1)
    soft = jax.nn.one_hot(targets, vocab) * (confidence - low) + low
    log_z = jax.scipy.special.logsumexp(logits, -1)
    loss = -(soft * jax.nn.log_softmax(logits)).sum(-1)
    entropy = -(confidence * np.log(confidence) + (vocab - 1) * low * np.log(low + 1e-20))
    return loss - entropy + z_loss * log_z ** 2


@pytest.mark.parametrize("label_smoothing,z_loss", [(0.0, 0.0), (0.1, 1e-4), (0.0, 1e-2)])
def test_token_cross_entropy_matches_one_hot_formula(label_smoothing, z_loss):
    logits = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 11)) * 3
    targets = jax.random.randint(jax.random.PRNGKey(1), (2, 5), 0, 11)
    got, z = trainer.token_cross_entropy(logits, targets, label_smoothing, z_loss)
    np.testing.assert_allclose(got, _naive_cross_entropy(logits, targets, label_smoothing, z_loss),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z, z_loss * jax.scipy.special.logsumexp(logits, -1) ** 2,
                               rtol=1e-5)


@pytest.mark.parametrize("label_smoothing,z_loss", [(0.0, 0.0), (0.1, 1e-4), (0.0, 1e-2)])
def test_token_cross_entropy_gradient_matches_autodiff_of_the_one_hot_formula(label_smoothing,
                                                                            z_loss):
    # The loss's hand-written gradient (trainer.log_z_and_target_logit) against JAX's autodiff
    # of the textbook formula, with uneven per-token weights as the train step applies them.
    logits = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 11)) * 3
    targets = jax.random.randint(jax.random.PRNGKey(1), (2, 5), 0, 11)
    weights = jax.random.uniform(jax.random.PRNGKey(2), (2, 5))

    def ours(x):
        loss, z = trainer.token_cross_entropy(x, targets, label_smoothing, z_loss)
        return (loss * weights).sum() + (z * weights[::-1]).sum()  # z's own gradient path too

    def naive(x):
        log_z = jax.scipy.special.logsumexp(x, -1)
        loss = _naive_cross_entropy(x, targets, label_smoothing, z_loss)
        return (loss * weights).sum() + (z_loss * log_z ** 2 * weights[::-1]).sum()

    np.testing.assert_allclose(jax.grad(ours)(logits), jax.grad(naive)(logits),
                               rtol=1e-5, atol=1e-6)


def _batches(pack: bool, n_rows: int, lengths=tiny.FEATURE_LENGTHS):
    ds = seqio.get_dataset(tiny.TEST_TASK, lengths,
                           feature_converter=seqio.EncDecFeatureConverter(pack=pack),
                           dataset_split="train", shuffle=False, verbose=False)
    rows = list(ds.take(n_rows).as_numpy_iterator())
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _example_key(inputs, targets):
    return (tuple(int(t) for t in inputs if t), tuple(int(t) for t in targets if t))


def test_packed_and_unpacked_batches_give_equal_per_example_losses():
    model = t5.Transformer(tiny.model_config())
    lengths = {"inputs": 160, "targets": 128}  # room for several examples per row
    packed = _batches(pack=True, n_rows=4, lengths=lengths)
    assert packed["decoder_segment_ids"].max() >= 3, "rows should hold several examples"
    params = model.init(jax.random.PRNGKey(0), **{
        k: jnp.asarray(packed[k][:1]) for k in
        ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens")},
        enable_dropout=False)["params"]
    params = jax.tree.map(lambda x: getattr(x, "value", x), params,
                          is_leaf=lambda x: hasattr(x, "value"))
    loss_config = trainer.LossConfig(z_loss=1e-4, label_smoothing=0.1)

    packed_losses = np.asarray(trainer.per_token_losses(
        params, {k: jnp.asarray(v) for k, v in packed.items()}, model=model,
        loss_config=loss_config))
    per_packed_example = {}
    for row in range(packed["decoder_target_tokens"].shape[0]):
        for seg in set(packed["decoder_segment_ids"][row]) - {0}:
            dec = packed["decoder_segment_ids"][row] == seg
            enc = packed["encoder_segment_ids"][row] == seg
            key = _example_key(packed["encoder_input_tokens"][row][enc],
                               packed["decoder_target_tokens"][row][dec])
            per_packed_example[key] = packed_losses[row][dec].sum()

    n = len(per_packed_example)
    unpacked = _batches(pack=False, n_rows=n, lengths=lengths)
    unpacked_losses = np.asarray(trainer.per_token_losses(
        params, {k: jnp.asarray(v) for k, v in unpacked.items()}, model=model,
        loss_config=loss_config)).sum(-1)
    matched = 0
    for i in range(n):
        key = _example_key(unpacked["encoder_input_tokens"][i],
                           unpacked["decoder_target_tokens"][i])
        if key in per_packed_example:
            np.testing.assert_allclose(per_packed_example[key], unpacked_losses[i], rtol=2e-5)
            matched += 1
    assert matched >= n - 1  # the last packed example may be cut at the row boundary


def test_microbatched_step_equals_full_batch_step():
    model = t5.Transformer(tiny.model_config())
    tx = optim.make_optimizer(optim.OptimizerConfig(learning_rate=0.01))
    batch = {k: jnp.asarray(v) for k, v in _batches(pack=True, n_rows=4).items()}
    state = None
    results = []
    for micro in (1, 2, 4):
        params = jax.tree.map(
            lambda x: getattr(x, "value", x),
            model.init(jax.random.PRNGKey(0), **{k: batch[k][:1] for k in (
                "encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens")},
                enable_dropout=False)["params"], is_leaf=lambda x: hasattr(x, "value"))
        state = trainer.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                                   opt_state=tx.init(params))
        new_state, metrics = jax.jit(lambda s, b: trainer.train_step(
            s, b, jax.random.PRNGKey(0), model=model, optimizer=tx,
            loss_config=trainer.LossConfig(), num_microbatches=micro))(state, batch)
        results.append((new_state, metrics))
    (ref_state, ref_metrics), others = results[0], results[1:]
    assert not np.allclose(jax.tree.leaves(ref_state.params)[0],
                           jax.tree.leaves(state.params)[0]), "the step must change params"
    for new_state, metrics in others:
        for name in ("loss", "accuracy", "tokens"):
            np.testing.assert_allclose(metrics[name], ref_metrics[name], rtol=1e-5)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                     new_state.params, ref_state.params)


def test_schedules():
    warm = optim.make_schedule(optim.OptimizerConfig(learning_rate=1.0, schedule="warmup",
                                                     warmup_steps=4))
    np.testing.assert_allclose([warm(s) for s in range(6)], [.25, .5, .75, 1, 1, 1])
    rsqrt = optim.make_schedule(optim.OptimizerConfig(learning_rate=1.0, schedule="rsqrt",
                                                      warmup_steps=100))
    np.testing.assert_allclose([rsqrt(0), rsqrt(99), rsqrt(399)], [0.1, 0.1, 0.05], rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown learning-rate schedule"):
        optim.OptimizerConfig(schedule="cosine_typo")


def test_target_logits_select_exactly_the_gathered_entry():
    logits = jax.random.normal(jax.random.PRNGKey(2), (3, 7, 50)) * 10
    targets = jax.random.randint(jax.random.PRNGKey(3), (3, 7), 0, 50)
    got = trainer.target_logits(logits, targets)
    # Bit-identical to a gather: the sum adds zeros to the one selected entry.
    np.testing.assert_array_equal(
        got, jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0])
    grad = jax.grad(lambda x: trainer.target_logits(x, targets).sum())(logits)
    np.testing.assert_array_equal(grad, jax.nn.one_hot(targets, 50))
