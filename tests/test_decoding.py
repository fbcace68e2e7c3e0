"""Tests of flan_jax/models/decoding.py and the KV-cache decode path of flan_jax/models/t5.py.

References are computed independently of the cache: full teacher-forced decoder passes
(model.apply) re-run on the growing prefix, and Hugging Face PyTorch T5 with the same weights.
"""
from __future__ import annotations

import dataclasses
import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax import partitioning
from flan_jax.models import decoding, t5

CFG = t5.T5Config(vocab_size=64, emb_dim=32, num_heads=2, head_dim=16, mlp_dim=64,
                  num_encoder_layers=2, num_decoder_layers=2, dtype="float32")
MODEL = t5.Transformer(CFG)
LENGTH = 8  # generated tokens


# ---------------------------------------------------------------------------------------
# Helpers (everything jitted: on CPU one compile beats running the model op by op)
# ---------------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnums=0)
def _init_boxed(cfg: t5.T5Config, key: jax.Array):
    tokens = jnp.ones((1, 4), jnp.int32)
    return t5.Transformer(cfg).init(key, tokens, tokens, tokens, enable_dropout=False)


@pytest.fixture(scope="module")
def params():
    return nn.unbox(_init_boxed(CFG, jax.random.key(0)))["params"]


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    """int32 [4, 9] inputs with different amounts of padding, each ending in EOS."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(2, CFG.vocab_size, size=(4, 9)).astype(np.int32)
    for row, length in enumerate((9, 6, 3, 7)):
        tokens[row, length - 1] = 1
        tokens[row, length:] = 0
    return tokens


@functools.lru_cache(maxsize=None)
def _jitted_generate(config: decoding.DecodingConfig):
    return jax.jit(functools.partial(decoding.generate, MODEL, config=config))


def _generate(params, inputs, eos_id: int = 1, rng=None, **config_fields):
    """numpy (tokens, scores); eos_id and rng are traced, so they share one compile."""
    config = decoding.DecodingConfig(max_decode_length=LENGTH, **config_fields)
    tokens, scores = _jitted_generate(config)(params, inputs, rng=rng, eos_id=eos_id)
    return np.asarray(tokens), np.asarray(scores)


@jax.jit
def _full_logits(params, encoder_tokens, decoder_inputs, decoder_targets):
    """Teacher-forced float32 logits [batch, dec_len, vocab], no cache."""
    return MODEL.apply({"params": params}, encoder_tokens, decoder_inputs, decoder_targets,
                       enable_dropout=False)


def _shift_right(tokens: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros_like(tokens[:, :1]), tokens[:, :-1]], axis=1)


def _lengths(tokens: np.ndarray, eos_id: int) -> np.ndarray:
    """Tokens up to and including the first EOS (the full width when there is none)."""
    is_eos = tokens == eos_id
    return np.where(is_eos.any(1), is_eos.argmax(1) + 1, tokens.shape[1])


def _sequence_log_probs(params, inputs, tokens: np.ndarray, eos_id: int) -> np.ndarray:
    """Teacher-forced sum of log p(token) over each row's tokens up to the first EOS.

    The masks come from 'realness' targets (1 up to the end), not from the tokens, so a
    generated token 0 before the end is scored as an ordinary token, as the cache does.
    """
    lengths = _lengths(tokens, eos_id)
    real = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
    logits = _full_logits(params, inputs, _shift_right(tokens), real.astype(np.int32))
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    chosen = np.take_along_axis(log_probs, tokens[..., None], axis=-1)[..., 0]
    return np.sum(np.where(real, chosen, 0.0), axis=1)


def _reference_greedy(params, inputs, eos_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy decoding that re-runs the whole decoder on the growing prefix at every step.

    Returns tokens [batch, LENGTH] (0 after EOS) and the step logits [batch, LENGTH, vocab].
    """
    batch = inputs.shape[0]
    tokens = np.zeros((batch, LENGTH), np.int32)
    step_logits = np.zeros((batch, LENGTH, CFG.vocab_size), np.float32)
    done = np.zeros(batch, bool)
    all_real = np.ones((batch, LENGTH), np.int32)  # causal: later positions cannot leak back
    for step in range(LENGTH):
        logits = np.asarray(_full_logits(params, inputs, _shift_right(tokens), all_real))
        step_logits[:, step] = logits[:, step]
        token = np.where(done, 0, logits[:, step].argmax(-1))
        tokens[:, step] = token
        done |= token == eos_id
    return tokens, step_logits


@pytest.fixture(scope="module")
def reference(params, inputs):
    """Reference greedy output with an EOS id that does occur: the token row 0 emits 3rd."""
    tokens, _ = _reference_greedy(params, inputs, eos_id=-1)
    eos_id = int(tokens[0, 2])
    tokens, logits = _reference_greedy(params, inputs, eos_id)
    return eos_id, tokens, logits


# ---------------------------------------------------------------------------------------
# The KV cache
# ---------------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnames="rows_per_input")
def _cached_step_logits(params, inputs, decoder_inputs, rows_per_input: int = 1):
    """Feeds decoder_inputs [batch * rows_per_input, LENGTH] one position at a time through
    the cache; rows_per_input consecutive decoder rows read each input's encoder output and
    cross-attention keys/values, held once (beam search's layout)."""
    encoded = MODEL.apply({"params": params}, inputs, enable_dropout=False,
                          method=MODEL.encode)
    cache = decoding._init_cache(MODEL, params, encoded, inputs, LENGTH,
                                 rows_per_input=rows_per_input)
    logits = []
    for step in range(LENGTH):
        step_logits, cache = decoding._decode_step(MODEL, params, cache, encoded, inputs,
                                                   decoder_inputs[:, step], LENGTH)
        logits.append(step_logits)
    return jnp.stack(logits, axis=1), cache


def test_cached_step_logits_equal_full_recompute(params, inputs):
    targets = np.random.default_rng(1).integers(1, CFG.vocab_size,
                                                (inputs.shape[0], LENGTH)).astype(np.int32)
    full = _full_logits(params, inputs, _shift_right(targets), np.ones_like(targets))
    cached, cache = _cached_step_logits(params, inputs, _shift_right(targets))
    np.testing.assert_allclose(cached, full, atol=1e-5, rtol=0)
    assert int(cache["decoder"]["cache_index"]) == LENGTH
    assert cache["decoder"]["layers_0"]["self_attention"]["cached_key"].shape == (
        inputs.shape[0], CFG.num_heads, LENGTH, CFG.head_dim)


def test_grouped_rows_share_one_cross_attention_cache(params, inputs):
    # Beam search decodes k rows per input against one copy of its encoder output; the
    # logits must equal those of decoding against k copies (T5X's tiled layout).
    groups = 3
    rows = inputs.shape[0] * groups
    decoder_inputs = np.random.default_rng(2).integers(
        1, CFG.vocab_size, (rows, LENGTH)).astype(np.int32)
    grouped, cache = _cached_step_logits(params, inputs, decoder_inputs,
                                         rows_per_input=groups)
    tiled, _ = _cached_step_logits(params, np.repeat(inputs, groups, axis=0), decoder_inputs)
    np.testing.assert_allclose(grouped, tiled, atol=1e-5, rtol=0)
    layer = cache["decoder"]["layers_0"]
    assert layer["encoder_decoder_attention"]["cached_key"].shape == (
        inputs.shape[0], CFG.num_heads, inputs.shape[1], CFG.head_dim)
    # The self-attention cache keeps an example's rows side by side (t5.MultiHeadAttention's
    # beams layout), and each row reads its own slot unless beam search reorders.
    assert layer["self_attention"]["cached_key"].shape == (
        inputs.shape[0], CFG.num_heads, LENGTH * groups, CFG.head_dim)
    np.testing.assert_array_equal(cache["decoder"]["beam_slots"],
                                  np.broadcast_to(np.arange(groups)[None, :, None],
                                                  (inputs.shape[0], groups, LENGTH)))


@pytest.mark.parametrize("relpos_per_layer", [False, True])
def test_reordered_beams_read_their_parents_history(params, inputs, relpos_per_layer):
    # Beam search moves no keys or values: a surviving beam takes its parent's beam_slots
    # (decoding._reorder_cache). After any sequence of reorders, every row's step logits
    # must equal a full recompute of the token history that row now carries. With
    # relpos_per_layer each layer spreads its own position bias over the beams' entries.
    model = MODEL
    if relpos_per_layer:
        model = t5.Transformer(dataclasses.replace(CFG, relpos_per_layer=True))
        params = nn.unbox(_init_boxed(model.config, jax.random.key(3)))["params"]
    groups, rows = 3, inputs.shape[0] * 3
    rng = np.random.default_rng(5)
    encoded = model.apply({"params": params}, inputs, enable_dropout=False,
                          method=model.encode)
    cache = decoding._init_cache(model, params, encoded, inputs, LENGTH,
                                 rows_per_input=groups)
    step = jax.jit(lambda cache, tokens: decoding._decode_step(
        model, params, cache, encoded, inputs, tokens, LENGTH))
    reorder = jax.jit(decoding._reorder_cache)
    full_logits = jax.jit(lambda tokens, decoder_inputs: model.apply(
        {"params": params}, tokens, decoder_inputs, jnp.ones_like(decoder_inputs),
        enable_dropout=False))
    history = np.zeros((rows, 0), np.int32)
    tiled_inputs = np.repeat(inputs, groups, axis=0)
    for position in range(LENGTH):
        tokens = rng.integers(1, CFG.vocab_size, rows).astype(np.int32)
        history = np.concatenate([history, tokens[:, None]], axis=1)
        logits, cache = step(cache, tokens)
        full = full_logits(tiled_inputs, history)
        np.testing.assert_allclose(logits, np.asarray(full)[:, -1], atol=1e-5, rtol=0)
        # Each example's beams pick parents among its own beams, repeats allowed.
        parents = rng.integers(0, groups, (inputs.shape[0], groups)).astype(np.int32)
        cache = reorder(cache, parents)
        history = history.reshape(inputs.shape[0], groups, -1)[
            np.arange(inputs.shape[0])[:, None], parents].reshape(rows, -1)
    assert cache["decoder"]["beam_slots"].shape == (inputs.shape[0], groups, LENGTH)


def test_decoder_rows_must_be_a_multiple_of_the_inputs(params, inputs):
    encoded = jnp.zeros(inputs.shape + (CFG.emb_dim,))
    six = jnp.zeros((6, 1), jnp.int32)  # 4 inputs
    with pytest.raises(ValueError, match="6 decoder rows for 4 encoded rows"):
        jax.eval_shape(lambda: MODEL.apply(
            {"params": params}, encoded, inputs, six, six, enable_dropout=False, decode=True,
            max_decode_length=4, method=MODEL.decode, mutable=["cache"]))


def test_greedy_equals_full_recompute_reference(params, inputs, reference):
    eos_id, expected, _ = reference
    assert (expected == eos_id).any(1).sum() >= 1 and (expected == 0).any()  # EOS exercised
    tokens, scores = _generate(params, inputs, eos_id=eos_id, method="greedy")
    np.testing.assert_array_equal(tokens, expected)
    np.testing.assert_allclose(scores, _sequence_log_probs(params, inputs, tokens, eos_id),
                               atol=1e-4)


def test_greedy_stops_when_all_rows_end(params, inputs, reference):
    # Row 0 alone ends at its 3rd token; tokens after that must be padding.
    eos_id, expected, _ = reference
    tokens, _ = _generate(params, inputs[:1], eos_id=eos_id, method="greedy")
    np.testing.assert_array_equal(tokens[0], np.r_[expected[0, :3], [0] * (LENGTH - 3)])


# ---------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------

def test_beam_of_one_equals_greedy(params, inputs, reference):
    eos_id = reference[0]
    greedy = _generate(params, inputs, eos_id=eos_id, method="greedy")
    beam = _generate(params, inputs, eos_id=eos_id, method="beam", num_beams=1,
                     length_penalty=0.0)
    np.testing.assert_array_equal(beam[0], greedy[0])
    np.testing.assert_allclose(beam[1], greedy[1], atol=1e-4)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_scores_are_penalised_sequence_log_probs(params, inputs, reference, alpha):
    eos_id = reference[0]
    tokens, scores = _generate(params, inputs, eos_id=eos_id, method="beam", num_beams=4,
                               length_penalty=alpha)
    lengths = _lengths(tokens, eos_id)
    assert (lengths < LENGTH).any()  # some beam ended with EOS
    real = np.arange(LENGTH)[None, :] < lengths[:, None]
    np.testing.assert_array_equal(tokens[~real], 0)
    expected = (_sequence_log_probs(params, inputs, tokens, eos_id)
                / ((5.0 + lengths) / 6.0) ** alpha)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    # The same search written plainly over full-recompute logits, one example at a time.
    expected_tokens, expected_scores = _reference_beam_search(params, inputs, eos_id, 4, alpha)
    np.testing.assert_array_equal(tokens, expected_tokens)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-4)


def _reference_beam_search(params, inputs, eos_id: int, beams: int, alpha: float
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Beam search over Python lists of (tokens, log-prob), without a cache or early stop.

    Each step keeps the 2 * beams best extensions: those ending in EOS join the finished
    hypotheses (score = log-prob / brevity penalty), the best `beams` others stay alive.
    """
    penalty = lambda length: ((5.0 + length) / 6.0) ** alpha
    all_tokens, all_scores = [], []
    for row in range(inputs.shape[0]):
        alive, finished = [((), 0.0)], []
        for step in range(LENGTH):
            prefixes = np.zeros((len(alive), LENGTH), np.int32)
            for i, (tokens, _) in enumerate(alive):
                prefixes[i, :len(tokens)] = tokens
            logits = _full_logits(params, np.repeat(inputs[row:row + 1], len(alive), 0),
                                  _shift_right(prefixes), np.ones_like(prefixes))[:, step]
            log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
            candidates = sorted(((tokens + (t,), total + log_probs[i, t])
                                 for i, (tokens, total) in enumerate(alive)
                                 for t in range(CFG.vocab_size)), key=lambda c: -c[1])
            candidates = candidates[:2 * beams]
            finished += [(tokens, total / penalty(step + 1)) for tokens, total in candidates
                         if tokens[-1] == eos_id]
            alive = [c for c in candidates if c[0][-1] != eos_id][:beams]
        best_tokens, best_score = (max(finished, key=lambda c: c[1]) if finished else
                                   (alive[0][0], alive[0][1] / penalty(LENGTH)))
        all_tokens.append(list(best_tokens) + [0] * (LENGTH - len(best_tokens)))
        all_scores.append(best_score)
    return np.asarray(all_tokens, np.int32), np.asarray(all_scores, np.float32)


# ---------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------

def test_sampling(params, inputs, reference):
    eos_id = reference[0]
    greedy, _ = _generate(params, inputs, eos_id=eos_id)
    key = jax.random.key(7)
    cold, _ = _generate(params, inputs, eos_id=eos_id, rng=key, method="sample",
                        temperature=1e-4)
    np.testing.assert_array_equal(cold, greedy)
    top1, _ = _generate(params, inputs, eos_id=eos_id, rng=key, method="sample", top_k=1)
    np.testing.assert_array_equal(top1, greedy)

    first, first_scores = _generate(params, inputs, rng=key, method="sample")
    again, _ = _generate(params, inputs, rng=key, method="sample")
    other, _ = _generate(params, inputs, rng=jax.random.key(8), method="sample")
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    assert (first != greedy).any()
    # Scores are the model's (untempered) log-probs of the sampled tokens.
    np.testing.assert_allclose(first_scores, _sequence_log_probs(params, inputs, first, 1),
                               atol=1e-4)


def test_config_validation():
    with pytest.raises(ValueError, match="method"):
        decoding.DecodingConfig(method="nucleus")
    with pytest.raises(ValueError, match="max_decode_length"):
        decoding.DecodingConfig(max_decode_length=0)
    with pytest.raises(ValueError, match="temperature"):
        decoding.DecodingConfig(temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        decoding.DecodingConfig(top_k=-1)
    with pytest.raises(ValueError, match="length_penalty"):
        decoding.DecodingConfig(length_penalty=-0.5)


def test_cached_decode_needs_a_length_and_one_position(params, inputs):
    encoded = jnp.zeros(inputs.shape + (CFG.emb_dim,))
    one, two = jnp.zeros((inputs.shape[0], 1), jnp.int32), jnp.zeros((inputs.shape[0], 2),
                                                                       jnp.int32)
    decode = functools.partial(MODEL.apply, {"params": params}, encoded, inputs,
                               enable_dropout=False, decode=True, method=MODEL.decode,
                               mutable=["cache"])
    with pytest.raises(ValueError, match="max_decode_length"):
        jax.eval_shape(lambda: decode(one, one))
    with pytest.raises(ValueError, match="one position per call"):
        jax.eval_shape(lambda: decode(two, two, max_decode_length=4))


def test_sample_without_rng_is_an_error(params, inputs):
    with pytest.raises(ValueError, match="rng"):
        decoding.generate(MODEL, params, inputs, decoding.DecodingConfig(method="sample"))


# ---------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------

def test_score_is_teacher_forced_log_likelihood(params, inputs):
    rng = np.random.default_rng(2)
    targets = rng.integers(2, CFG.vocab_size, (inputs.shape[0], 5)).astype(np.int32)
    for row, length in enumerate((5, 2, 4, 1)):
        targets[row, length:] = 0
    batch = {"encoder_input_tokens": inputs, "decoder_input_tokens": _shift_right(targets),
             "decoder_target_tokens": targets}
    got = jax.jit(functools.partial(decoding.score, MODEL))(params, batch)

    logits = np.asarray(_full_logits(params, inputs, _shift_right(targets), targets),
                        np.float64)
    log_z = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    expected = [sum(logits[r, t, targets[r, t]] - log_z[r, t] for t in range(5)
                    if targets[r, t]) for r in range(len(targets))]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert got.shape == (inputs.shape[0],) and got.dtype == jnp.float32


def _option_rows(inputs, options_per_input=2, seed=3):
    """Rank-classification rows: every input repeated once per option, short targets."""
    rng = np.random.default_rng(seed)
    enc = np.repeat(inputs, options_per_input, axis=0)
    targets = rng.integers(2, CFG.vocab_size, (len(enc), 3)).astype(np.int32)
    targets[::2, 2] = 0
    return {"encoder_input_tokens": enc, "decoder_input_tokens": _shift_right(targets),
            "decoder_target_tokens": targets}


def test_shared_inputs_are_encoded_once_with_the_same_scores(params, inputs):
    batch = _option_rows(inputs)  # 8 rows, 4 distinct inputs
    shared = decoding.share_encoder_inputs(batch)
    assert shared["encoder_input_tokens"].shape == (4, inputs.shape[1])  # batch / 2
    np.testing.assert_array_equal(shared["encoder_input_tokens"], inputs)
    np.testing.assert_array_equal(shared["encoder_row"], [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(shared["encoder_input_tokens"][shared["encoder_row"]],
                                  batch["encoder_input_tokens"])
    score = jax.jit(functools.partial(decoding.score, MODEL))
    np.testing.assert_allclose(score(params, shared), score(params, batch), atol=1e-5)


def test_share_encoder_inputs_buckets_and_gives_up():
    tokens = np.arange(16 * 3, dtype=np.int32).reshape(16, 3)
    rows = {"encoder_input_tokens": tokens[[0, 0, 5, 5, 5, 9, 9, 9] * 2]}  # 3 distinct
    shared = decoding.share_encoder_inputs(rows)
    assert shared["encoder_input_tokens"].shape == (4, 3)  # 16 / 4 holds 3, padded by copy
    np.testing.assert_array_equal(shared["encoder_input_tokens"], tokens[[0, 5, 9, 9]])
    assert decoding.share_encoder_inputs(rows, num_shards=8) is not None  # 8 rows split 8 ways
    assert decoding.share_encoder_inputs(rows, num_shards=16) is None  # no bucket splits 16
    assert decoding.share_encoder_inputs({"encoder_input_tokens": tokens}) is None  # distinct
    with pytest.raises(ValueError, match="unpacked"):
        decoding.score(MODEL, {}, {**shared, "decoder_input_tokens": tokens[:, :2],
                                   "decoder_target_tokens": tokens[:, :2],
                                   "encoder_segment_ids": tokens})


# ---------------------------------------------------------------------------------------
# Hugging Face PyTorch T5 parity
# ---------------------------------------------------------------------------------------

def _hf_to_flax_params(state_dict: dict, cfg: t5.T5Config) -> dict:
    """Maps a HF T5ForConditionalGeneration state dict onto our (T5X-named) param tree."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in state_dict.items()}
    kernel = lambda name: sd[name].T  # torch Linear [out, in] -> our kernel [in, out]

    def attention(prefix: str) -> dict:
        return {ours: {"kernel": kernel(f"{prefix}.{theirs}.weight")}
                for ours, theirs in (("query", "q"), ("key", "k"), ("value", "v"),
                                     ("out", "o"))}

    def mlp(prefix: str) -> dict:
        return {name: {"kernel": kernel(f"{prefix}.DenseReluDense.{name}.weight")}
                for name in ("wi_0", "wi_1", "wo")}

    scale = lambda name: {"scale": sd[name]}
    encoder = {"relpos_bias": {"rel_embedding": sd[
                   "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].T},
               "encoder_norm": scale("encoder.final_layer_norm.weight")}
    for i in range(cfg.num_encoder_layers):
        p = f"encoder.block.{i}.layer"
        encoder[f"layers_{i}"] = {
            "pre_attention_layer_norm": scale(f"{p}.0.layer_norm.weight"),
            "attention": attention(f"{p}.0.SelfAttention"),
            "pre_mlp_layer_norm": scale(f"{p}.1.layer_norm.weight"),
            "mlp": mlp(f"{p}.1")}
    decoder = {"relpos_bias": {"rel_embedding": sd[
                   "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].T},
               "decoder_norm": scale("decoder.final_layer_norm.weight"),
               "logits_dense": {"kernel": kernel("lm_head.weight")}}
    for i in range(cfg.num_decoder_layers):
        p = f"decoder.block.{i}.layer"
        decoder[f"layers_{i}"] = {
            "pre_self_attention_layer_norm": scale(f"{p}.0.layer_norm.weight"),
            "self_attention": attention(f"{p}.0.SelfAttention"),
            "pre_cross_attention_layer_norm": scale(f"{p}.1.layer_norm.weight"),
            "encoder_decoder_attention": attention(f"{p}.1.EncDecAttention"),
            "pre_mlp_layer_norm": scale(f"{p}.2.layer_norm.weight"),
            "mlp": mlp(f"{p}.2")}
    return {"token_embedder": {"embedding": sd["shared.weight"]}, "encoder": encoder,
            "decoder": decoder}


def test_greedy_matches_hugging_face_t5(params, inputs):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_config = transformers.T5Config(
        vocab_size=CFG.vocab_size, d_model=CFG.emb_dim, d_kv=CFG.head_dim, d_ff=CFG.mlp_dim,
        num_layers=CFG.num_encoder_layers, num_decoder_layers=CFG.num_decoder_layers,
        num_heads=CFG.num_heads, relative_attention_num_buckets=32,
        relative_attention_max_distance=128, dropout_rate=0.0,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False, pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0)
    hf_model = transformers.T5ForConditionalGeneration(hf_config).eval()
    assert hf_model.config.dense_act_fn == "gelu_new"  # tanh GELU, as ours
    with torch.no_grad():  # HF's init leaves the norms at 1: randomise them to test them
        for name, weight in hf_model.named_parameters():
            if "layer_norm" in name:
                weight.uniform_(0.5, 1.5)
    ours = _hf_to_flax_params(hf_model.state_dict(), CFG)
    assert jax.tree.structure(ours) == jax.tree.structure(params)
    assert all(a.shape == b.shape for a, b in zip(jax.tree.leaves(ours),
                                                  jax.tree.leaves(params)))

    # An EOS that this model does emit, so both sides must stop and pad the same way.
    free_running, _ = _generate(ours, inputs, eos_id=-1)
    eos_id = int(free_running[1, 3])
    tokens, _ = _generate(ours, inputs, eos_id=eos_id)
    assert (tokens == 0).any()

    with torch.no_grad():
        hf_tokens = hf_model.generate(
            input_ids=torch.from_numpy(inputs.astype(np.int64)),
            attention_mask=torch.from_numpy((inputs > 0).astype(np.int64)),
            do_sample=False, num_beams=1, max_new_tokens=LENGTH, min_length=0,
            eos_token_id=eos_id, pad_token_id=0, decoder_start_token_id=0).numpy()
    hf_tokens = hf_tokens[:, 1:]  # drop the start token
    hf_tokens = np.pad(hf_tokens, ((0, 0), (0, LENGTH - hf_tokens.shape[1])))
    np.testing.assert_array_equal(tokens, hf_tokens)


# ---------------------------------------------------------------------------------------
# Sharded generation
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_sharded_generate_equals_unsharded(params, inputs, reference, method):
    eos_id = reference[0]
    batch = np.concatenate([inputs, inputs[::-1]])  # 8 rows: 2 per 'data' device
    expected = _generate(params, batch, eos_id=eos_id, method=method, num_beams=2)

    mesh = partitioning.create_mesh(2)
    rules = partitioning.logical_axis_rules(parameter_sharding=True)
    specs = nn.get_partition_spec(_init_boxed(CFG, jax.random.key(0)))["params"]
    shardings = nn.logical_to_mesh_sharding(specs, mesh, rules)
    sharded_params = jax.device_put(params, shardings)
    assert not sharded_params["decoder"]["logits_dense"]["kernel"].sharding.is_fully_replicated
    sharded_batch = jax.device_put(batch, partitioning.batch_sharding(mesh))
    config = decoding.DecodingConfig(method=method, max_decode_length=LENGTH, num_beams=2)
    with mesh, nn.logical_axis_rules(rules):
        tokens, scores = jax.jit(functools.partial(decoding.generate, MODEL, config=config))(
            sharded_params, sharded_batch, eos_id=eos_id)
    np.testing.assert_array_equal(tokens, expected[0])
    np.testing.assert_allclose(scores, expected[1], atol=1e-4)


@pytest.mark.parametrize("kind", ["distinct", "ties", "ties_at_the_top", "minus_inf", "nan"])
@pytest.mark.parametrize("block", [4, 16, 100])
def test_top_k_in_blocks_returns_what_lax_top_k_returns(kind, block):
    rng = np.random.default_rng(block)
    x = rng.standard_normal((3, 1037)).astype(np.float32)  # 1037: a last, partial block
    if kind == "ties":
        x = np.round(x * 2) / 2
    elif kind == "ties_at_the_top":
        x[:, rng.integers(0, x.shape[1], 30)] = x.max()
    elif kind == "minus_inf":
        x[:, rng.integers(0, x.shape[1], 1000)] = -np.inf
    elif kind == "nan":
        x[1, rng.integers(0, x.shape[1], 3)] = np.nan
    expected_values, expected_indices = jax.lax.top_k(x, 8)
    values, indices = jax.jit(functools.partial(decoding._top_k_by_blocks, k=8,
                                                block=block))(x)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(values, expected_values)


def test_top_k_in_blocks_adds_each_segments_offset():
    # Beam search's candidates: beam j's entries count with that beam's offset; the result
    # must be lax.top_k of the sums, whose array the blocked version never forms.
    rng = np.random.default_rng(7)
    beams, vocab, block = 3, 4 * 16, 16
    x = rng.standard_normal((5, beams * vocab)).astype(np.float32)
    x[0, :] = np.round(x[0, :])                      # ties within and across beams
    offsets = -rng.random((5, beams)).astype(np.float32) * 3
    offsets[1] = offsets[1, 0]                       # equal offsets: ties across beams
    offsets[2, 1] = -np.inf                          # a dead beam
    summed = x + np.repeat(offsets, vocab, axis=1)
    expected_values, expected_indices = jax.lax.top_k(summed, 6)
    values, indices = jax.jit(functools.partial(decoding._top_k_by_blocks, k=6,
                                                block=block))(x, offsets=offsets)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(values, expected_values)
    with pytest.raises(ValueError, match="whole number of blocks of 16"):
        decoding._top_k_by_blocks(x[:, :-8], 6, block, offsets)


def test_best_continuations_use_blocks_only_when_lowered_for_a_cpu():
    rng = np.random.default_rng(8)
    batch, beams, vocab = 4, 3, 8 * decoding.TOP_K_BLOCK
    logits = jnp.asarray(rng.standard_normal((batch, beams, vocab)).astype(np.float32) * 4)
    alive = jnp.asarray(-rng.random((batch, beams)).astype(np.float32) * 5)
    best = jax.jit(lambda l, a: decoding._best_continuations(l, a, 2 * beams))
    blocks = f"tensor<{batch}x{beams * 8}x{decoding.TOP_K_BLOCK}xf32>"
    lowered = {platform: best.trace(logits, alive).lower(
        lowering_platforms=(platform,)).as_text() for platform in ("cpu", "tpu")}
    assert blocks in lowered["cpu"]
    assert blocks not in lowered["tpu"] and "top_k" in lowered["tpu"]
    # On this CPU: T5X's log-softmax candidates, to float rounding, in the same order.
    candidates = (alive[:, :, None] + jax.nn.log_softmax(logits)).reshape(batch, -1)
    expected_values, expected_indices = jax.lax.top_k(candidates, 2 * beams)
    values, indices = best(logits, alive)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(values, expected_values, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["distinct", "ties", "minus_inf", "nan", "nan_in_later_blocks"])
def test_greedy_from_the_maximum_is_argmax_and_its_log_softmax(kind):
    rng = np.random.default_rng(9)
    logits = (rng.standard_normal((4, 300)) * 3).astype(np.float32)
    if kind == "ties":
        logits[:, [7, 100, 299]] = logits.max() + 1      # the first of equal maxima wins
    elif kind == "minus_inf":
        logits[1, :] = -np.inf
        logits[2, rng.integers(0, 300, 200)] = -np.inf
    elif kind == "nan":
        logits[3, [50, 20]] = np.nan                      # argmax's choice: the first NaN
    elif kind == "nan_in_later_blocks":                   # 300 ids: blocks of 128, 128, 44
        logits[0, 299] = np.nan
        logits[1, [200, 130]] = np.nan
        logits[2, 0] = logits.max() + 1                   # a maximum before the NaN
        logits[2, 140] = np.nan
    tokens, log_probs = jax.jit(decoding._greedy_from_maximum)(logits)
    np.testing.assert_array_equal(tokens, np.asarray(jnp.argmax(logits, axis=-1)))
    expected = np.take_along_axis(np.asarray(jax.nn.log_softmax(logits, axis=-1)),
                                  np.asarray(tokens)[:, None], axis=-1)[:, 0]
    np.testing.assert_allclose(log_probs, expected, atol=1e-6, rtol=0)


def test_greedy_choice_uses_the_maximum_only_when_lowered_for_a_cpu():
    choose = jax.jit(decoding._greedy_choice)
    lowered = {platform: choose.trace(jnp.zeros((4, 300)), jax.random.key(0)).lower(
        lowering_platforms=(platform,)).as_text() for platform in ("cpu", "tpu")}
    # jnp.argmax is one reduce over (value, index) pairs, with two results.
    argmax = re.compile(r"%\w+:2 = stablehlo\.reduce")
    assert argmax.search(lowered["tpu"]) and not argmax.search(lowered["cpu"])
