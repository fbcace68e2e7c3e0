"""Tests of the T5 model: parameter tree, masks and packing, position buckets, remat, dropout."""
from __future__ import annotations

import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.models import t5

TINY = t5.T5Config(vocab_size=64, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=32,
                   num_encoder_layers=2, num_decoder_layers=2, dtype="float32")
TINY_V1_0 = dataclasses.replace(TINY, mlp_activations=("relu",), logits_via_embedding=True)


# Everything runs under jit: on CPU one compile is several times faster than running the
# model op by op for the first time.

@functools.partial(jax.jit, static_argnums=0)
def _init_boxed(cfg: t5.T5Config, key: jax.Array):
    """Variables as init returns them: params boxed with their logical axis names."""
    tokens = jnp.ones((1, 4), jnp.int32)
    return t5.Transformer(cfg).init(key, tokens, tokens, tokens, enable_dropout=False)


def _init(cfg: t5.T5Config, seed: int = 0):
    """Unboxed variables {'params': ...}, as the trainer applies them."""
    return nn.unbox(_init_boxed(cfg, jax.random.key(seed)))


@functools.partial(jax.jit, static_argnames=("cfg", "enable_dropout"))
def _logits(variables, batch, cfg: t5.T5Config = TINY, enable_dropout: bool = False,
            dropout_key: jax.Array | None = None) -> jax.Array:
    rngs = None if dropout_key is None else {"dropout": dropout_key}
    return t5.Transformer(cfg).apply(variables, **batch, enable_dropout=enable_dropout,
                                     rngs=rngs)


def _dropout_key(seed: int) -> jax.Array:
    # XLA's RngBitGenerator: the default threefry takes ~5x longer to compile the ~24 dropout
    # sites on CPU, and these tests check dropout's placement, not the generator.
    return jax.random.key(seed, impl="rbg")


@jax.jit
def _encoded(variables, tokens, segment_ids=None) -> jax.Array:
    model = t5.Transformer(TINY)
    return model.apply(variables, tokens, segment_ids, enable_dropout=False,
                       method=model.encode)


@jax.jit
def _decoded(variables, encoded, batch) -> jax.Array:
    model = t5.Transformer(TINY)
    return model.apply(
        variables, encoded, batch["encoder_input_tokens"], batch["decoder_input_tokens"],
        batch["decoder_target_tokens"], batch["encoder_segment_ids"],
        batch["decoder_segment_ids"], batch["decoder_positions"], enable_dropout=False,
        method=model.decode)


@pytest.fixture(scope="module")
def tiny_vars():
    return _init(TINY)


def _random_tokens(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(1, TINY.vocab_size, size=shape).astype(np.int32)


def _shift_right(targets: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], targets[:-1]]).astype(np.int32)


# ---------------------------------------------------------------------------------------
# 1. Parameter tree
# ---------------------------------------------------------------------------------------

def _expected_shapes(cfg: t5.T5Config) -> dict[str, tuple[int, ...]]:
    d, joined, mlp, vocab = cfg.emb_dim, cfg.num_heads * cfg.head_dim, cfg.mlp_dim, cfg.vocab_size
    wi = ["wi"] if len(cfg.mlp_activations) == 1 else ["wi_0", "wi_1"]

    def attention(prefix):
        return {f"{prefix}/query/kernel": (d, joined), f"{prefix}/key/kernel": (d, joined),
                f"{prefix}/value/kernel": (d, joined), f"{prefix}/out/kernel": (joined, d)}

    def mlp_block(prefix):
        shapes = {f"{prefix}/mlp/{name}/kernel": (d, mlp) for name in wi}
        shapes[f"{prefix}/mlp/wo/kernel"] = (mlp, d)
        return shapes

    shapes = {"token_embedder/embedding": (vocab, d),
              "encoder/relpos_bias/rel_embedding": (cfg.num_heads, 32),
              "decoder/relpos_bias/rel_embedding": (cfg.num_heads, 32),
              "encoder/encoder_norm/scale": (d,), "decoder/decoder_norm/scale": (d,)}
    for i in range(cfg.num_encoder_layers):
        p = f"encoder/layers_{i}"
        shapes |= attention(f"{p}/attention") | mlp_block(p)
        shapes |= {f"{p}/pre_attention_layer_norm/scale": (d,),
                   f"{p}/pre_mlp_layer_norm/scale": (d,)}
    for i in range(cfg.num_decoder_layers):
        p = f"decoder/layers_{i}"
        shapes |= attention(f"{p}/self_attention") | attention(f"{p}/encoder_decoder_attention")
        shapes |= mlp_block(p)
        shapes |= {f"{p}/{n}/scale": (d,) for n in (
            "pre_self_attention_layer_norm", "pre_cross_attention_layer_norm",
            "pre_mlp_layer_norm")}
    if not cfg.logits_via_embedding:
        shapes["decoder/logits_dense/kernel"] = (d, vocab)
    return shapes


def _flat(tree) -> dict[str, object]:
    leaves = jax.tree_util.tree_flatten_with_path(
        tree, is_leaf=lambda x: isinstance(x, nn.Partitioned))[0]
    return {"/".join(k.key for k in path): leaf for path, leaf in leaves}


@pytest.mark.parametrize("cfg", [TINY, TINY_V1_0], ids=["v1.1", "v1.0"])
def test_param_tree_names_shapes_and_logical_axes(cfg):
    boxed = _init_boxed(cfg, jax.random.key(0))
    params = _flat(boxed["params"])
    assert {k: v.value.shape for k, v in params.items()} == _expected_shapes(cfg)
    for name, leaf in params.items():
        assert isinstance(leaf, nn.Partitioned), name
        assert len(leaf.names) == leaf.value.ndim, name
        assert leaf.value.dtype == jnp.float32, name
    assert params["token_embedder/embedding"].names == ("vocab", "embed")
    assert params["encoder/layers_0/attention/query/kernel"].names == ("embed", "joined_kv")
    assert params["decoder/layers_1/self_attention/out/kernel"].names == ("joined_kv", "embed")
    assert params["encoder/relpos_bias/rel_embedding"].names == ("heads", "relpos_buckets")
    assert params["decoder/decoder_norm/scale"].names == ("embed",)
    mlp_in = "wi" if len(cfg.mlp_activations) == 1 else "wi_1"
    assert params[f"decoder/layers_0/mlp/{mlp_in}/kernel"].names == ("embed", "mlp")
    assert params["decoder/layers_0/mlp/wo/kernel"].names == ("mlp", "embed")
    if not cfg.logits_via_embedding:
        assert params["decoder/logits_dense/kernel"].names == ("embed", "vocab")
    assert cfg.num_params() == sum(leaf.value.size for leaf in params.values())


def test_num_params_matches_published_sizes_and_tree():
    # HF's google/t5-v1_1-small and t5-small parameter counts.
    assert t5.T5Config().num_params() == 76_961_152
    t5_small = t5.T5Config(num_heads=8, num_encoder_layers=6, num_decoder_layers=6,
                           mlp_dim=2048, mlp_activations=("relu",), logits_via_embedding=True)
    assert t5_small.num_params() == 60_506_624
    tokens = jnp.ones((1, 4), jnp.int32)
    shapes = jax.eval_shape(lambda: nn.unbox(t5.Transformer(t5_small).init(
        jax.random.key(0), tokens, tokens, tokens, enable_dropout=False)))
    assert sum(x.size for x in jax.tree.leaves(shapes)) == t5_small.num_params()


def test_initializer_scales():
    cfg = dataclasses.replace(TINY, emb_dim=256, num_heads=4, head_dim=64)
    x = jnp.ones((1, 1, 256))
    mask = jnp.ones((1, 1, 1, 1), bool)
    params = nn.unbox(t5.MultiHeadAttention(cfg).init(jax.random.key(0), x, x, mask, None,
                                                      True))["params"]
    key_std = float(jnp.std(params["key"]["kernel"]))
    query_std = float(jnp.std(params["query"]["kernel"]))
    assert key_std == pytest.approx(1 / math.sqrt(256), rel=0.05)
    # The 1/sqrt(head_dim) logit scaling lives in the query init.
    assert query_std == pytest.approx(key_std / math.sqrt(64), rel=0.05)
    embed = nn.unbox(t5.Embed(1000, 64, jnp.float32).init(jax.random.key(0),
                                                           jnp.zeros((1, 1), int)))
    assert float(jnp.std(embed["params"]["embedding"])) == pytest.approx(1.0, rel=0.05)


def test_attention_matches_numpy_reference():
    cfg = TINY
    rng = np.random.default_rng(0)
    xq, xkv = rng.normal(size=(2, 3, 16)), rng.normal(size=(2, 5, 16))
    mask = rng.random((2, 1, 3, 5)) > 0.3
    bias = rng.normal(size=(1, 2, 3, 5))
    module = t5.MultiHeadAttention(cfg)
    variables = nn.unbox(module.init(jax.random.key(0), xq, xkv, mask, bias, True))
    got = module.apply(variables, xq, xkv, mask, bias, True)

    p = {k: np.asarray(v["kernel"], np.float64) for k, v in variables["params"].items()}
    q, k, v = (np.reshape(x @ p[name], x.shape[:2] + (2, 8))
               for x, name in ((xq, "query"), (xkv, "key"), (xkv, "value")))
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) + bias + np.where(mask, 0.0, -1e10)  # no scaling
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    want = np.einsum("bhqk,bkhd->bqhd", weights, v).reshape(2, 3, 16) @ p["out"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def _batched_dot_generals(jaxpr) -> list:
    """Dimension numbers of every dot_general with batch dimensions, sub-jaxprs included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general" and eqn.params["dimension_numbers"][1][0]:
            found.append(eqn.params["dimension_numbers"])
        for sub in jax.core.jaxprs_in_params(eqn.params):
            found += _batched_dot_generals(sub)
    return found


def test_attention_matmuls_are_heads_major_batched_products():
    # q.k^T and weights.v contract [batch, heads, ...] operands over their last axes, batch
    # axes (0, 1) on both sides and no transposed output: the form XLA:CPU runs fastest
    # (the einsums over [batch, length, heads, head_dim] made it compute the context as
    # (v^T w^T)^T; README "Benchmarks"). Backward products keep batch axes (0, 1) too.
    cfg = TINY
    rng = np.random.default_rng(0)
    xq, xkv = rng.normal(size=(2, 3, 16)), rng.normal(size=(2, 5, 16))
    mask = np.ones((2, 1, 3, 5), bool)
    module = t5.MultiHeadAttention(cfg)
    variables = nn.unbox(module.init(jax.random.key(0), xq, xkv, mask, None, True))
    forward = _batched_dot_generals(jax.make_jaxpr(
        lambda v: module.apply(v, xq, xkv, mask, None, True))(variables).jaxpr)
    batch = ((0, 1), (0, 1))
    assert sorted(forward) == sorted([(((3,), (3,)), batch),   # q [b,h,q,d] . k [b,h,k,d]
                                      (((3,), (2,)), batch)])  # w [b,h,q,k] . v [b,h,k,d]
    backward = _batched_dot_generals(jax.make_jaxpr(jax.grad(
        lambda v: module.apply(v, xq, xkv, mask, None, True).sum()))(variables).jaxpr)
    assert len(backward) == 2 + 4 and all(dims[1] == batch for dims in backward)


def test_rms_norm_and_gated_mlp_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(loc=2.0, size=(2, 3, 16)).astype(np.float32)  # nonzero mean on purpose
    norm = t5.RMSNorm(jnp.float32)
    scale = rng.normal(size=16)
    got = norm.apply({"params": {"scale": scale}}, x)
    want = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, -1, keepdims=True) + 1e-6) * scale
    np.testing.assert_allclose(got, want, rtol=1e-5)

    mlp = t5.MlpBlock(TINY)
    params = nn.unbox(mlp.init(jax.random.key(0), x, True))["params"]
    w = {k: np.asarray(v["kernel"], np.float64) for k, v in params.items()}
    gate = x @ w["wi_0"]
    gelu = 0.5 * gate * (1 + np.tanh(np.sqrt(2 / np.pi) * (gate + 0.044715 * gate ** 3)))
    want = (gelu * (x @ w["wi_1"])) @ w["wo"]
    np.testing.assert_allclose(mlp.apply({"params": params}, x, True), want, rtol=1e-4,
                               atol=1e-5)


def test_tied_logits_are_scaled_embedding_products(examples):
    variables = _init(TINY_V1_0)
    batch = _unpacked(examples, enc_len=6, dec_len=5)
    logits, state = t5.Transformer(TINY_V1_0).apply(
        variables, **batch, enable_dropout=False,
        capture_intermediates=lambda module, _: module.name == "decoder_norm")
    final = state["intermediates"]["decoder"]["decoder_norm"]["__call__"][0]
    embedding = variables["params"]["token_embedder"]["embedding"]
    np.testing.assert_allclose(logits, final @ embedding.T / math.sqrt(TINY.emb_dim),
                               rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------
# 2-3. Packing and masks
# ---------------------------------------------------------------------------------------

def _pack(examples, enc_len: int, dec_len: int) -> dict[str, np.ndarray]:
    """Packs (inputs, targets) pairs into one row, as seqio's EncDecFeatureConverter does."""
    row = {name: np.zeros((1, enc_len if name.startswith("encoder") else dec_len), np.int32)
           for name in ("encoder_input_tokens", "encoder_segment_ids", "encoder_positions",
                        "decoder_input_tokens", "decoder_target_tokens", "decoder_segment_ids",
                        "decoder_positions")}
    enc_start = dec_start = 0
    for segment, (inputs, targets) in enumerate(examples, start=1):
        enc = slice(enc_start, enc_start + len(inputs))
        dec = slice(dec_start, dec_start + len(targets))
        row["encoder_input_tokens"][0, enc] = inputs
        row["encoder_segment_ids"][0, enc] = segment
        row["encoder_positions"][0, enc] = np.arange(len(inputs))
        row["decoder_target_tokens"][0, dec] = targets
        row["decoder_input_tokens"][0, dec] = _shift_right(targets)
        row["decoder_segment_ids"][0, dec] = segment
        row["decoder_positions"][0, dec] = np.arange(len(targets))
        enc_start, dec_start = enc.stop, dec.stop
    return row


def _unpacked(examples, enc_len: int, dec_len: int) -> dict[str, np.ndarray]:
    """One padded row per example."""
    batch = {"encoder_input_tokens": np.zeros((len(examples), enc_len), np.int32),
             "decoder_input_tokens": np.zeros((len(examples), dec_len), np.int32),
             "decoder_target_tokens": np.zeros((len(examples), dec_len), np.int32)}
    for i, (inputs, targets) in enumerate(examples):
        batch["encoder_input_tokens"][i, :len(inputs)] = inputs
        batch["decoder_target_tokens"][i, :len(targets)] = targets
        batch["decoder_input_tokens"][i, :len(targets)] = _shift_right(targets)
    return batch


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(1)
    return [(_random_tokens(rng, n_in), _random_tokens(rng, n_out))
            for n_in, n_out in ((3, 2), (4, 3), (2, 2))]


def test_packed_logits_equal_unpacked(tiny_vars, examples):
    packed = _pack(examples, enc_len=10, dec_len=8)
    unpacked = _unpacked(examples, enc_len=6, dec_len=5)
    packed_logits = _logits(tiny_vars, packed)
    unpacked_logits = _logits(tiny_vars, unpacked)
    packed_encoded = _encoded(tiny_vars, packed["encoder_input_tokens"],
                              packed["encoder_segment_ids"])
    unpacked_encoded = _encoded(tiny_vars, unpacked["encoder_input_tokens"])
    # encode then decode, as a sampling loop will call them, is the same as __call__.
    np.testing.assert_allclose(_decoded(tiny_vars, packed_encoded, packed), packed_logits,
                               atol=1e-6)
    enc_start = dec_start = 0
    for i, (inputs, targets) in enumerate(examples):
        np.testing.assert_allclose(packed_encoded[0, enc_start:enc_start + len(inputs)],
                                   unpacked_encoded[i, :len(inputs)], atol=1e-5)
        np.testing.assert_allclose(packed_logits[0, dec_start:dec_start + len(targets)],
                                   unpacked_logits[i, :len(targets)], atol=1e-5)
        enc_start += len(inputs)
        dec_start += len(targets)


def test_encoder_segments_are_isolated(tiny_vars, examples):
    packed = _pack(examples, enc_len=10, dec_len=8)
    changed = {k: v.copy() for k, v in packed.items()}
    segment_ids = packed["encoder_segment_ids"][0]
    segment_2 = segment_ids == 2
    changed["encoder_input_tokens"][0, segment_2] = (
        changed["encoder_input_tokens"][0, segment_2] % 60 + 2)

    def encode(batch):
        return np.asarray(_encoded(tiny_vars, batch["encoder_input_tokens"],
                                   batch["encoder_segment_ids"]))[0]

    before, after = encode(packed), encode(changed)
    # Padding (segment 0) attends nowhere, so its output is arbitrary; only real tokens count.
    others = (segment_ids == 1) | (segment_ids == 3)
    np.testing.assert_allclose(before[others], after[others], atol=1e-6)
    assert not np.allclose(before[segment_2], after[segment_2], atol=1e-3)
    # The decoder's segment 1 and 3 logits do not see segment 2's encoder tokens either.
    decoder_segments = packed["decoder_segment_ids"][0]
    dec_others = (decoder_segments == 1) | (decoder_segments == 3)
    np.testing.assert_allclose(np.asarray(_logits(tiny_vars, packed))[0, dec_others],
                               np.asarray(_logits(tiny_vars, changed))[0, dec_others],
                               atol=1e-6)


def test_decoder_is_causal(tiny_vars):
    rng = np.random.default_rng(2)
    batch = {"encoder_input_tokens": _random_tokens(rng, 1, 6),
             "decoder_target_tokens": _random_tokens(rng, 1, 5)}
    batch["decoder_input_tokens"] = _shift_right(batch["decoder_target_tokens"][0])[None]
    changed = {k: v.copy() for k, v in batch.items()}
    changed["decoder_input_tokens"][0, 3] = batch["decoder_input_tokens"][0, 3] % 60 + 2
    before, after = _logits(tiny_vars, batch), _logits(tiny_vars, changed)
    np.testing.assert_allclose(before[0, :3], after[0, :3], atol=1e-6)
    assert not np.allclose(before[0, 3:], after[0, 3:], atol=1e-3)


def test_cross_mask_needs_both_segment_ids(tiny_vars, examples):
    packed = _pack(examples, enc_len=10, dec_len=8)
    del packed["encoder_segment_ids"]
    with pytest.raises(ValueError, match="segment_ids"):
        _logits(tiny_vars, packed)


# ---------------------------------------------------------------------------------------
# 4. Relative position buckets
# ---------------------------------------------------------------------------------------

def _reference_bucket(relative_position: int, bidirectional: bool, num_buckets: int,
                      max_distance: int) -> int:
    """The T5 paper's bucketing, one offset at a time in float64."""
    distance, offset = -relative_position, 0
    if bidirectional:
        num_buckets //= 2
        if distance < 0:
            offset, distance = num_buckets, -distance
    else:
        distance = max(distance, 0)
    max_exact = num_buckets // 2
    if distance < max_exact:
        return offset + distance
    log_bucket = int(math.log(distance / max_exact) / math.log(max_distance / max_exact)
                     * (num_buckets - max_exact))
    return offset + min(max_exact + log_bucket, num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (16, 64), (8, 20)])
def test_relative_position_bucket_matches_reference(bidirectional, num_buckets, max_distance):
    relative = np.arange(-300, 301)
    got = t5.relative_position_bucket(jnp.asarray(relative), bidirectional=bidirectional,
                                      num_buckets=num_buckets, max_distance=max_distance)
    want = [_reference_bucket(int(r), bidirectional, num_buckets, max_distance)
            for r in relative]
    np.testing.assert_array_equal(got, want)


def test_relative_position_bucket_known_values():
    relative = jnp.array([0, -1, 1, -7, -8, -127, -1000, 1000, 5])

    def buckets(bidirectional):
        return t5.relative_position_bucket(relative, bidirectional=bidirectional,
                                           num_buckets=32, max_distance=128).tolist()

    assert buckets(True) == [0, 1, 17, 7, 8, 15, 15, 31, 21]
    assert buckets(False) == [0, 1, 0, 7, 8, 31, 31, 0, 0]



@pytest.mark.parametrize("batch", [1, 2, 3, 5, 16])
def test_relative_position_bias_gradient_sums_over_the_batch(batch):
    # The bias [1, heads, q, k] is broadcast over the batch with a hand-written gradient
    # (halving adds instead of XLA's reduce): it must equal the plain sum over rows, odd
    # batch sizes included.
    rng = np.random.default_rng(batch)
    bias = jnp.asarray(rng.normal(size=(1, 2, 3, 5)), jnp.float32)
    weights = jnp.asarray(rng.normal(size=(batch, 2, 3, 5)), jnp.float32)
    grad = jax.grad(lambda b: (t5._broadcast_over_batch(b, batch) * weights).sum())(bias)
    np.testing.assert_allclose(grad, weights.sum(0, keepdims=True), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(t5._broadcast_over_batch(bias, batch),
                                  jnp.broadcast_to(bias, weights.shape))


def test_relative_position_bias_gradient_halves_only_on_cpu():
    # Halving adds are a CPU speed-up; lowered for a TPU the gradient is XLA's one reduce
    # (the halving adds' partial sums cost TPU memory: README "Pod scale").
    grad = jax.grad(lambda b, w: (t5._broadcast_over_batch(b, 16) * w).sum())
    args = jnp.ones((1, 2, 3, 5)), jnp.ones((16, 2, 3, 5))

    def lowered(platform):
        return jax.jit(grad).trace(*args).lower(lowering_platforms=(platform,)).as_text()

    cpu, tpu = lowered("cpu"), lowered("tpu")
    assert "stablehlo.reduce" not in cpu and cpu.count("stablehlo.add") == 4  # log2(16) adds
    assert tpu.count("stablehlo.reduce") == 1

# ---------------------------------------------------------------------------------------
# 5-6. Remat and dropout
# ---------------------------------------------------------------------------------------

def test_remat_matches_no_remat(examples):
    batch = _pack(examples, enc_len=10, dec_len=8)
    # One layer per stack keeps the three gradient compiles affordable.
    base = dataclasses.replace(TINY, num_encoder_layers=1, num_decoder_layers=1,
                               dropout_rate=0.1)
    variables = _init(base)
    # Dropout on, with one key: remat must also replay the same dropout masks.
    key = _dropout_key(3)

    @functools.partial(jax.jit, static_argnums=0)
    def logits_and_grads(cfg, params):
        def loss(params):
            logits = _logits({"params": params}, batch, cfg, True, key)
            return jnp.sum(jax.nn.log_softmax(logits)[..., 1]), logits
        grads, logits = jax.grad(loss, has_aux=True)(params)
        return logits, grads

    results = {}
    for policy in ("none", "full", "dots"):
        cfg = dataclasses.replace(base, remat_policy=policy)
        assert (jax.tree.structure(jax.eval_shape(functools.partial(_init, cfg)))
                == jax.tree.structure(variables)), "remat changed the parameter names"
        results[policy] = logits_and_grads(cfg, variables["params"])
    for policy in ("full", "dots"):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
                     results[policy], results["none"])


def test_dropout(tiny_vars, examples):
    batch = _pack(examples, enc_len=10, dec_len=8)
    cfg = dataclasses.replace(TINY, dropout_rate=0.3)

    def run(enable_dropout, seed):
        return _logits(tiny_vars, batch, cfg, enable_dropout, _dropout_key(seed))

    deterministic = _logits(tiny_vars, batch, cfg)  # needs no rng
    np.testing.assert_array_equal(run(False, 0), deterministic)
    np.testing.assert_array_equal(run(False, 1), deterministic)
    noisy_0 = run(True, 0)
    np.testing.assert_array_equal(noisy_0, run(True, 0))
    assert not np.allclose(noisy_0, deterministic, atol=1e-3)
    assert not np.allclose(noisy_0, run(True, 1), atol=1e-3)


# ---------------------------------------------------------------------------------------
# 7. Config validation and dtypes
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,field", [
    ({"mlp_activations": ("gelu", "swishy")}, "mlp_activations"),
    ({"mlp_activations": ()}, "mlp_activations"),
    ({"emb_dim": -16}, "emb_dim"),
    ({"num_heads": 0}, "num_heads"),
    ({"vocab_size": 3.5}, "vocab_size"),
    ({"remat_policy": "everything"}, "remat_policy"),
    ({"dropout_rate": 1.0}, "dropout_rate"),
    ({"dropout_rate": -0.1}, "dropout_rate"),
    ({"dtype": "float16"}, "dtype"),
    ({"relative_attention_num_buckets": 7}, "relative_attention_num_buckets"),
    ({"relative_attention_max_distance": 16}, "relative_attention_max_distance"),
])
def test_config_validation(overrides, field):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(TINY, **overrides)


def test_config_accepts_activation_list_and_stays_hashable():
    cfg = dataclasses.replace(TINY, mlp_activations=["gelu", "linear"])
    assert cfg.mlp_activations == ("gelu", "linear")
    assert hash(cfg) == hash(TINY)


def test_bfloat16_logits_are_float32_and_close(tiny_vars, examples):
    batch = _pack(examples, enc_len=10, dec_len=8)
    want = _logits(tiny_vars, batch)
    for cfg in (dataclasses.replace(TINY, dtype="bfloat16"),
                dataclasses.replace(TINY, dtype="bfloat16", float32_attention_logits=False)):
        got = _logits(tiny_vars, batch, cfg)
        assert got.dtype == jnp.float32
        real = batch["decoder_target_tokens"][0] > 0
        error = np.abs(np.asarray(got) - np.asarray(want))[0, real]
        assert error.max() < 0.03 * np.abs(np.asarray(want)).max()
        assert (jnp.argmax(got, -1) == jnp.argmax(want, -1))[0, real].mean() > 0.8


# ---------------------------------------------------------------------------------------
# 8. bfloat16 and dropout as T5X computes them (t5x/examples/t5/{layers,network}.py at
#    google-research/t5x HEAD; tools/t5x_precision.py runs T5X's own network beside ours:
#    bf16 logits identical, also with dropout and the same rng).
# ---------------------------------------------------------------------------------------

TINY_BF16 = dataclasses.replace(TINY, dtype="bfloat16")


def test_t5x_default_attention_logits_in_activation_dtype():
    # T5X network.T5Config: float32_attention_logits: bool = False.
    assert t5.T5Config().float32_attention_logits is False


@pytest.mark.parametrize("float32_logits", [False, True])
def test_bfloat16_attention_follows_t5x_dot_product_attention(float32_logits):
    """T5X's dot_product_attention, written out: q.k in bf16 unless float32_logits; the mask
    (0 / -1e10 in the activation dtype) plus the bf16 position bias form one bias, cast to
    the logits' dtype; softmax in that dtype, then cast to bf16; context in bf16."""
    cfg = dataclasses.replace(TINY_BF16, float32_attention_logits=float32_logits)
    rng = np.random.default_rng(0)
    xq = jnp.asarray(rng.normal(size=(2, 3, 16)), jnp.bfloat16)
    xkv = jnp.asarray(rng.normal(size=(2, 5, 16)), jnp.bfloat16)
    mask = rng.random((2, 1, 3, 5)) > 0.3
    bias = jnp.asarray(rng.normal(size=(1, 2, 3, 5)), jnp.float32)
    module = t5.MultiHeadAttention(cfg)
    variables = nn.unbox(module.init(jax.random.key(0), xq, xkv, mask, bias, True))
    got = jax.jit(lambda v: module.apply(v, xq, xkv, mask, bias, True))(variables)

    bf16 = jnp.bfloat16

    @jax.jit
    def t5x_formula(params):
        kernel = lambda name: params[name]["kernel"].astype(bf16)
        heads = lambda x: x.reshape(x.shape[:2] + (2, 8))
        q, k, v = heads(xq @ kernel("query")), heads(xkv @ kernel("key")), heads(xkv @ kernel("value"))
        if float32_logits:
            q, k = q.astype(jnp.float32), k.astype(jnp.float32)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k)
        attention_bias = jnp.where(mask, jnp.zeros((), bf16), jnp.full((), -1e10, bf16))
        attention_bias = attention_bias + bias.astype(bf16)
        weights = jax.nn.softmax(logits + attention_bias.astype(logits.dtype)).astype(bf16)
        context = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(2, 3, 16)
        return context @ kernel("out")

    want = t5x_formula(variables["params"])
    assert got.dtype == want.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))


def test_bfloat16_attention_dropout_scales_by_bf16_reciprocal():
    # T5X: multiplier = keep.astype(dtype) / jnp.asarray(keep_prob, dtype), so in bf16 a kept
    # weight is scaled by 1/0.9 rounded to bfloat16 (1.109375), not 1.1111.
    cfg = dataclasses.replace(TINY_BF16, dropout_rate=0.1)
    rng = np.random.default_rng(1)
    q = jnp.asarray(rng.normal(size=(4, 2, 3, 8)), jnp.bfloat16)  # [batch, heads, q, head_dim]
    k = jnp.asarray(rng.normal(size=(4, 2, 16, 8)), jnp.bfloat16)
    mask = np.ones((4, 1, 3, 16), bool)
    module = t5.MultiHeadAttention(cfg)

    def weights(deterministic):
        return module.apply({}, q, k, mask, None, deterministic, method="_attention_weights",
                            rngs={"dropout": jax.random.key(3)})
    clean, dropped = (np.asarray(weights(d), np.float32) for d in (True, False))
    kept = dropped != 0
    assert 0 < kept.mean() < 1
    scale = np.float32(jnp.asarray(1.0, jnp.bfloat16) / jnp.asarray(0.9, jnp.bfloat16))
    assert scale == np.float32(1.109375)
    np.testing.assert_array_equal(dropped[kept],
                                  np.asarray(jnp.asarray(clean[kept], jnp.bfloat16) *
                                             jnp.asarray(scale, jnp.bfloat16), np.float32))


def test_bfloat16_output_projection_is_float32_as_t5x_logits_dense(tiny_vars, examples):
    # T5X's decoder: DenseGeneral(vocab, dtype=jnp.float32, name='logits_dense'): the bf16
    # decoder output and the kernel both enter the matmul as float32.
    batch = _pack(examples, enc_len=10, dec_len=8)
    _, state = jax.jit(lambda v: t5.Transformer(TINY_BF16).apply(
        v, **batch, enable_dropout=False, capture_intermediates=True))(tiny_vars)
    decoder_out = state["intermediates"]["decoder"]["decoder_norm"]["__call__"][0]
    logits = state["intermediates"]["__call__"][0]
    assert decoder_out.dtype == jnp.bfloat16 and logits.dtype == jnp.float32
    kernel = tiny_vars["params"]["decoder"]["logits_dense"]["kernel"]
    want = jax.jit(jnp.dot)(decoder_out.astype(jnp.float32), kernel)
    np.testing.assert_allclose(logits, want, rtol=1e-6, atol=1e-6)
    rounded = jax.jit(jnp.dot)(decoder_out.astype(jnp.float32),
                               kernel.astype(jnp.bfloat16).astype(jnp.float32))
    assert not np.allclose(logits, rounded, rtol=1e-6, atol=1e-6)  # the kernel is not rounded


def test_encoder_output_dropout_is_elementwise_as_t5x(tiny_vars, examples):
    # T5X's Encoder ends with nn.Dropout(rate) without broadcast_dims: one mask element per
    # position and feature, where every other dropout shares its mask along the length.
    batch = _pack(examples, enc_len=10, dec_len=8)
    cfg = dataclasses.replace(TINY, dropout_rate=0.5)
    model = t5.Transformer(cfg)
    encoded = np.asarray(jax.jit(lambda v: model.apply(
        v, batch["encoder_input_tokens"], batch["encoder_segment_ids"], enable_dropout=True,
        method=model.encode, rngs={"dropout": _dropout_key(0)}))(tiny_vars))
    zeros = encoded[0] == 0  # [length, features]: exact zeros come from the last dropout only
    assert 0.3 < zeros.mean() < 0.7
    assert not (zeros == zeros[:1]).all(), "mask broadcast over the length axis"
