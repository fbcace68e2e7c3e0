"""Soft prompt tuning and LoRA: the model additions (flan_jax/models/t5.py, flan_jax/peft.py)."""
import dataclasses

import flax.linen
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny
from flan_jax import peft
from flan_jax.models import decoding, t5

ALL_TARGETS = ("query", "key", "value", "out", "mlp")


def _batch(seed=0, batch=3, enc=12, dec=7):
    rng = np.random.RandomState(seed)
    enc_tokens = rng.randint(2, 300, (batch, enc)).astype(np.int32)
    enc_tokens[1, 9:] = 0  # padding in one row
    targets = rng.randint(2, 300, (batch, dec)).astype(np.int32)
    targets[2, 5:] = 0
    inputs = np.concatenate([np.zeros((batch, 1), np.int32), targets[:, :-1]], axis=1)
    return dict(encoder_input_tokens=jnp.asarray(enc_tokens),
                decoder_input_tokens=jnp.asarray(inputs),
                decoder_target_tokens=jnp.asarray(targets))


def _init(config, seed=0):
    batch = _batch()
    return flax.linen.unbox(t5.Transformer(config).init(jax.random.PRNGKey(seed), **batch,
                                                        enable_dropout=False)["params"])


def _logits(config, params, batch):
    return t5.Transformer(config).apply({"params": params}, **batch, enable_dropout=False)


def _paths(params):
    return set(flax.traverse_util.flatten_dict(params))


def test_defaults_are_plain_t5_and_peft_only_adds_parameters():
    base = tiny.model_config()
    assert not peft.is_peft(base) and base.num_peft_params() == 0
    base_paths = _paths(_init(base))
    assert not any(p[-1] in peft.TRAINABLE_NAMES for p in base_paths)
    for config in (tiny.model_config(lora_rank=4, lora_targets=ALL_TARGETS),
                   tiny.model_config(prompt_length=5)):
        paths = _paths(_init(config))
        added = paths - base_paths
        assert base_paths <= paths and added
        assert all(p[-1] in peft.TRAINABLE_NAMES for p in added)
        count = sum(x.size for x in jax.tree.leaves(_init(config)))
        assert count == config.num_params()


def test_zero_initialised_lora_and_prompt_length_zero_give_the_base_logits():
    batch = _batch()
    base = tiny.model_config()
    base_params = _init(base)
    expected = _logits(base, base_params, batch)
    np.testing.assert_array_equal(_logits(tiny.model_config(prompt_length=0), base_params,
                                          batch), expected)
    lora = tiny.model_config(lora_rank=4, lora_targets=ALL_TARGETS)
    trainable, _ = peft.split(_init(lora, seed=1), lora)
    lora_b = [v for p, v in flax.traverse_util.flatten_dict(trainable).items()
              if p[-1] == "lora_b"]
    assert len(lora_b) == 2 * (4 + 3) + 2 * (2 * 4 + 3)  # attention + gated MLP projections
    assert all(not np.any(np.asarray(b)) for b in lora_b)
    np.testing.assert_array_equal(
        _logits(lora, peft.merge(trainable, base_params), batch), expected)


def test_split_and_merge_follow_the_one_predicate():
    lora = tiny.model_config(lora_rank=2, prompt_length=3)
    params = _init(lora)
    trainable, frozen = peft.split(params, lora)
    assert {p[-1] for p in _paths(trainable)} == {"prompt", "lora_a", "lora_b"}
    assert not {p[-1] for p in _paths(frozen)} & set(peft.TRAINABLE_NAMES)
    jax.tree.map(np.testing.assert_array_equal, peft.merge(trainable, frozen), params)
    plain = tiny.model_config()
    everything, nothing = peft.split(_init(plain), plain)
    assert nothing == {} and _paths(everything) == _paths(_init(plain))


def _nonzero_lora(config, seed=3):
    """LoRA params with random lora_b too, so the adapter changes the outputs."""
    params = _init(config, seed)
    flat = flax.traverse_util.flatten_dict(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(flat))
    for key, path in zip(keys, sorted(flat)):
        if path[-1] == "lora_b":
            flat[path] = 0.1 * jax.random.normal(key, flat[path].shape)
    return flax.traverse_util.unflatten_dict(flat)


def test_lora_merge_gives_a_plain_t5_with_the_same_logits():
    batch = _batch()
    lora = tiny.model_config(lora_rank=4, lora_alpha=8.0, lora_targets=ALL_TARGETS)
    params = _nonzero_lora(lora)
    adapted = _logits(lora, params, batch)
    merged, plain = peft.merge_lora(params, lora)
    assert plain == tiny.model_config() and not peft.is_peft(plain)
    assert _paths(merged) == _paths(_init(plain))
    base_only = peft.split(params, lora)[1]
    # The adapter does change the model, and the merged kernels reproduce that change.
    assert np.abs(np.asarray(adapted - _logits(plain, base_only, batch))).max() > 1e-2
    np.testing.assert_allclose(_logits(plain, merged, batch), adapted, rtol=1e-4, atol=1e-4)


def test_lora_merge_of_scanned_layers_folds_each_layer():
    batch = _batch()
    lora = tiny.model_config(lora_rank=4, lora_alpha=8.0, lora_targets=ALL_TARGETS,
                             scan_layers=True)
    params = _nonzero_lora(lora)
    kernel = params["encoder"]["layers"]["mlp"]["wo"]["kernel"]
    assert kernel.ndim == 3 and kernel.shape[t5.PARAM_SCAN_AXIS] == lora.num_encoder_layers
    merged, plain = peft.merge_lora(params, lora)
    assert plain.scan_layers and not peft.is_peft(plain)
    np.testing.assert_allclose(_logits(plain, merged, batch), _logits(lora, params, batch),
                               rtol=1e-4, atol=1e-4)


def test_lora_merge_refuses_a_soft_prompt():
    config = tiny.model_config(prompt_length=4)
    with pytest.raises(ValueError, match="soft prompt"):
        peft.merge_lora(_init(config), config)


def test_lora_scale_is_alpha_over_rank():
    assert tiny.model_config(lora_rank=4).lora_scale == 1.0
    assert tiny.model_config(lora_rank=4, lora_alpha=32.0).lora_scale == 8.0
    assert tiny.model_config(lora_rank=4, lora_targets=("query",)).lora_rank_of("value") == 0


@pytest.mark.parametrize("fields, match", [
    (dict(prompt_length=-1), "prompt_length"),
    (dict(lora_rank=2.5), "lora_rank"),
    (dict(lora_rank=4, lora_targets=("query", "ffn")), "lora_targets"),
    (dict(lora_rank=4, lora_alpha=0.0), "lora_alpha"),
    (dict(prompt_length=1, prompt_init_texts=("yes", "no")), "prompt_init_texts"),
])
def test_bad_peft_settings_are_named(fields, match):
    with pytest.raises(ValueError, match=match):
        tiny.model_config(**fields)


def test_soft_prompt_is_prepended_as_real_tokens_and_padding_stays_invisible():
    config = tiny.model_config(prompt_length=5)
    params = _init(config)
    batch = _batch()
    model = t5.Transformer(config)
    encoded = model.apply({"params": params}, batch["encoder_input_tokens"],
                          enable_dropout=False, method=model.encode)
    assert encoded.shape == (3, 5 + 12, config.emb_dim)
    # More padding after the real tokens changes nothing (masks cover prompt + tokens).
    padded = dict(batch, encoder_input_tokens=jnp.pad(batch["encoder_input_tokens"],
                                                      ((0, 0), (0, 6))))
    real = np.asarray(batch["decoder_target_tokens"] > 0)  # padded targets' logits are junk
    np.testing.assert_allclose(np.asarray(_logits(config, params, padded))[real],
                               np.asarray(_logits(config, params, batch))[real],
                               rtol=1e-5, atol=1e-5)
    # The prompt matters: another prompt gives other logits.
    other = jax.tree_util.tree_map_with_path(
        lambda p, v: v + 1.0 if p[-1].key == "prompt" else v, params)
    assert np.abs(np.asarray(_logits(config, other, batch)
                             - _logits(config, params, batch))).max() > 1e-3


def _converted(converter, examples, lengths):
    """Runs a seqio feature converter over (inputs, targets) id lists -> numpy rows."""
    import tensorflow as tf
    ds = tf.data.Dataset.from_generator(
        lambda: ({"inputs": i, "targets": t} for i, t in examples),
        output_signature={k: tf.TensorSpec([None], tf.int32) for k in ("inputs", "targets")})
    rows = list(converter(ds, lengths).as_numpy_iterator())
    return {k: jnp.asarray(np.stack([r[k] for r in rows])) for k in rows[0]}


def test_packed_soft_prompt_gives_every_segment_the_unpacked_logits():
    """A prompt per packed segment: data.PromptSlotsFeatureConverter reserves the slots,
    the encoder fills them; each segment's logits equal its unpacked example's."""
    import seqio
    from flan_jax import data
    config = tiny.model_config(prompt_length=3)
    params = _init(config)
    rng = np.random.RandomState(4)
    examples = [(list(rng.randint(2, 300, n)) + [1], list(rng.randint(2, 300, m)) + [1])
                for n, m in ((5, 3), (8, 2), (3, 4))]
    lengths = {"inputs": 30, "targets": 16}
    packed = _converted(data.PromptSlotsFeatureConverter(3), examples, lengths)
    assert packed["encoder_input_tokens"].shape == (1, 33)  # all three in one row, + 3 slots
    unpacked = _converted(seqio.EncDecFeatureConverter(pack=False), examples,
                          {"inputs": 12, "targets": 8})
    packed_logits = np.asarray(_logits(config, params, {
        k: v for k, v in packed.items() if k != "decoder_loss_weights"}))
    unpacked_logits = np.asarray(_logits(config, params, {
        k: unpacked[k] for k in ("encoder_input_tokens", "decoder_input_tokens",
                                 "decoder_target_tokens")}))
    segments = np.asarray(packed["decoder_segment_ids"][0])
    for i, (_, targets) in enumerate(examples):
        np.testing.assert_allclose(packed_logits[0, segments == i + 1],
                                   unpacked_logits[i, :len(targets)], rtol=1e-5, atol=1e-5)
    # The slots hold the prompt: another prompt changes every segment's logits.
    other = jax.tree_util.tree_map_with_path(
        lambda p, v: v + 1.0 if p[-1].key == "prompt" else v, params)
    moved = np.asarray(_logits(config, other, {
        k: v for k, v in packed.items() if k != "decoder_loss_weights"}))
    for i in range(len(examples)):
        assert np.abs(moved[0, segments == i + 1]
                      - packed_logits[0, segments == i + 1]).max() > 1e-3


def test_packed_soft_prompt_needs_positions():
    config = tiny.model_config(prompt_length=2)
    batch = _batch()
    segments = (batch["encoder_input_tokens"] > 0).astype(jnp.int32)
    with pytest.raises(ValueError, match="PromptSlotsFeatureConverter"):
        t5.Transformer(config).apply(
            {"params": _init(config)}, **batch, encoder_segment_ids=segments,
            decoder_segment_ids=(batch["decoder_target_tokens"] > 0).astype(jnp.int32),
            enable_dropout=False)


@pytest.mark.parametrize("fields", [dict(prompt_length=4), dict(lora_rank=2)])
def test_cached_decoding_matches_the_full_forward_pass(fields):
    """Greedy KV-cache decoding equals argmax of teacher forcing on its own output."""
    config = tiny.model_config(**fields)
    params = _nonzero_lora(config) if config.lora_rank else _init(config)
    batch = _batch()
    tokens, _ = decoding.generate(t5.Transformer(config), params,
                                  batch["encoder_input_tokens"],
                                  decoding.DecodingConfig(method="greedy", max_decode_length=6),
                                  eos_id=-1)
    inputs = jnp.concatenate([jnp.zeros((3, 1), jnp.int32), tokens[:, :-1]], axis=1)
    forced = _logits(config, params, dict(encoder_input_tokens=batch["encoder_input_tokens"],
                                          decoder_input_tokens=inputs,
                                          decoder_target_tokens=jnp.ones_like(tokens)))
    np.testing.assert_array_equal(np.asarray(tokens), np.argmax(np.asarray(forced), -1))


def test_prompt_init_samples_the_vocabulary_and_embeds_class_labels():
    config = tiny.model_config(prompt_length=6, prompt_init_texts=("yes", "no"))
    embedding = jax.random.normal(jax.random.PRNGKey(0), (384, config.emb_dim))
    vocabulary = tiny.seqio.ByteVocabulary()
    prompt = np.asarray(peft.initial_prompt(embedding, config, jax.random.PRNGKey(1),
                                            vocabulary))
    assert prompt.shape == (6, config.emb_dim)
    yes_ids = vocabulary.encode("yes")
    np.testing.assert_allclose(prompt[0], np.asarray(embedding)[yes_ids].mean(0), rtol=1e-6)
    rows = {tuple(np.round(r, 6)) for r in np.asarray(embedding)}
    sampled = [tuple(np.round(r, 6)) for r in prompt[2:]]
    assert all(r in rows for r in sampled) and len(set(sampled)) == 4  # without replacement
    with pytest.raises(ValueError, match="vocabulary"):
        peft.initial_prompt(embedding, config, jax.random.PRNGKey(1))


def test_trainable_state_and_frozen_base_have_their_own_shardings():
    from flan_jax import optim, partitioning, trainer
    config = tiny.model_config(prompt_length=4, lora_rank=2)
    mesh = partitioning.create_mesh(2)  # ('data': 4, 'model': 2)
    for fsdp, prompt_spec in ((False, (None, None)), (True, (None, "data"))):
        program = trainer.build_train_program(config, optim.make_optimizer(
            optim.OptimizerConfig()), trainer.LossConfig(), mesh, parameter_sharding=fsdp)
        assert program.is_peft
        assert tuple(program.layout.shardings.params["encoder"]["prompt"].spec) == prompt_spec
        frozen = program.layout.frozen_shardings
        assert "prompt" not in frozen["encoder"] and "lora_a" not in str(frozen)
        kernel = frozen["encoder"]["layers_0"]["attention"]["query"]["kernel"].spec
        assert tuple(kernel) == (("data" if fsdp else None), "model")
        assert program.num_trainable_params == config.num_peft_params()
        assert program.num_params == config.num_params()


def test_packed_batches_reserve_prompt_slots_in_every_segment():
    from flan_jax import data
    config = data.DatasetConfig(tiny.TEST_TASK, tiny.FEATURE_LENGTHS, batch_size=4, seed=0)
    plain = next(data.BatchIterator(config))
    iterator = data.BatchIterator(config, prompt_length=3)
    batch = next(iterator)
    assert iterator.state()["prompt_slots"] == 3
    for name, value in batch.items():  # encoder features grow by the slots, decoder ones not
        grow = 3 if name.startswith("encoder") else 0
        assert value.shape == (4, plain[name].shape[1] + grow), name
    tokens, segments, positions = (batch[k] for k in (
        "encoder_input_tokens", "encoder_segment_ids", "encoder_positions"))
    starts = (positions == 0) & (segments > 0)
    assert starts.sum() >= 4
    for row, col in zip(*np.nonzero(starts)):
        np.testing.assert_array_equal(tokens[row, col:col + 3], [data.PROMPT_SLOT_ID] * 3)
        np.testing.assert_array_equal(positions[row, col:col + 3], [0, 1, 2])
        assert len(set(segments[row, col:col + 3])) == 1
    # Every real position below 3 is a slot (so the model fills exactly the slots).
    assert (tokens[(positions < 3) & (segments > 0)] == data.PROMPT_SLOT_ID).all()
