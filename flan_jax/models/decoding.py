"""Generation (greedy, beam search, temperature sampling) over T5's KV cache, and scoring.

The encoder runs once; the decoder then runs one position per step inside a
jax.lax.while_loop, reading and extending the 'cache' collection of flan_jax/models/t5.py
(self-attention keys/values appended per step, cross-attention keys/values projected once).
The loop stops as soon as every sequence is finished, or after max_decode_length steps.

Conventions (T5 / seqio): token 0 is padding and the decoder's start token, EOS is 1 by
default. Everything here is a pure function of (params, inputs, rng), jittable with the
config static, e.g. jax.jit(functools.partial(generate, model, config=config)). Under a mesh
with logical axis rules the batch dimension follows the model's 'batch' constraints.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.models import t5

_METHODS = ("greedy", "beam", "sample")
# Stands in for -inf in scores: arithmetic on it stays finite (no inf - inf = NaN).
NEG_INF = -1.0e7

Params = Any
Cache = Any


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
    """How `generate` picks tokens.

    Attributes:
      method: "greedy" (argmax), "beam" (beam search) or "sample" (ancestral sampling).
      max_decode_length: number of generated tokens, EOS included.
      num_beams: beam width, for "beam".
      length_penalty: for "beam", alpha of the GNMT / T5X brevity penalty: a finished
        sequence of n tokens scores log p / ((5 + n) / 6) ** alpha; 0 disables it.
      temperature: for "sample", logits are divided by it before sampling.
      top_k: for "sample", sample among the k most likely tokens; 0 = the full distribution.
    """

    method: str = "greedy"
    max_decode_length: int = 64
    num_beams: int = 4
    length_penalty: float = 0.6
    temperature: float = 1.0
    top_k: int = 0

    def __post_init__(self):
        if self.method not in _METHODS:
            raise ValueError(f"DecodingConfig.method must be one of {_METHODS}, got "
                             f"{self.method!r}.")
        for name in ("max_decode_length", "num_beams"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DecodingConfig.{name} must be a positive integer, got "
                                 f"{value!r}.")
        if not self.length_penalty >= 0.0:
            raise ValueError("DecodingConfig.length_penalty (alpha) must be >= 0, got "
                             f"{self.length_penalty!r}; 0 disables the penalty.")
        if not self.temperature > 0.0:
            raise ValueError(f"DecodingConfig.temperature must be > 0, got {self.temperature!r}"
                             "; use method='greedy' for argmax decoding.")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"DecodingConfig.top_k must be an integer >= 0 (0 = no top-k "
                             f"filtering), got {self.top_k!r}.")


def brevity_penalty(length: jax.Array | int, alpha: float) -> jax.Array:
    """((5 + length) / 6) ** alpha, the divisor of a beam's log-probability (GNMT, T5X)."""
    return jnp.power((5.0 + jnp.asarray(length, jnp.float32)) / 6.0, alpha)


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------

def generate(model: t5.Transformer, params: Params, encoder_input_tokens: jax.Array,
             config: DecodingConfig, *, rng: jax.Array | None = None, eos_id: int = 1,
             encoder_segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Generates targets for a batch of inputs.

    Args:
      model: the T5 Transformer (its config fixes the shapes).
      params: the 'params' collection (unboxed), possibly sharded.
      encoder_input_tokens: int32 [batch, in_len], 0 = padding; one example per row.
      config: the decoding method and its settings.
      rng: a PRNG key, required for method "sample" (same key, same output).
      eos_id: the end-of-sequence token.
      encoder_segment_ids: optional int32 [batch, in_len]; only restricts the encoder's
        self-attention (the decoder attends to every non-padding input token).
    Returns:
      tokens: int32 [batch, max_decode_length], 0 after the first EOS (and everywhere after
        the end when no EOS was produced within max_decode_length).
      scores: float32 [batch]. greedy / sample: sum of the model's log-probabilities
        (untempered, unfiltered) of the returned tokens up to and including EOS. beam: that
        sum divided by brevity_penalty(n, length_penalty), n = the number of returned
        non-padding tokens including EOS (max_decode_length when no EOS was produced).
    """
    if config.method == "sample" and rng is None:
        raise ValueError("generate(method='sample') needs rng, a jax.random key.")
    if config.top_k > model.config.vocab_size:
        raise ValueError(f"DecodingConfig.top_k={config.top_k} exceeds the model's vocabulary "
                         f"size {model.config.vocab_size}.")
    encoder_input_tokens = jnp.asarray(encoder_input_tokens, jnp.int32)
    if encoder_input_tokens.ndim != 2:
        raise ValueError("encoder_input_tokens must be [batch, length], got shape "
                         f"{encoder_input_tokens.shape}.")
    encoded = model.apply({"params": params}, encoder_input_tokens, encoder_segment_ids,
                          enable_dropout=False, method=model.encode)
    if config.method == "beam":
        return _beam_search(model, params, encoded, encoder_input_tokens, config, eos_id)
    choose = _greedy_choice if config.method == "greedy" else _sampler(config)
    return _sequential_decode(model, params, encoded, encoder_input_tokens, config, eos_id,
                              choose, rng)


def score(model: t5.Transformer, params: Params, batch: Mapping[str, jax.Array]) -> jax.Array:
    """Teacher-forced log-likelihood of each row's targets, e.g. for rank classification.

    Args:
      batch: 'encoder_input_tokens' [batch, in_len], 'decoder_input_tokens' and
        'decoder_target_tokens' [batch, tgt_len] (int32, 0 = padding); segment ids and
        positions are passed on to the model when present; 'decoder_loss_weights'
        [batch, tgt_len], when present, weights the positions instead of target != 0.
        With 'encoder_row' int32 [batch], rows share inputs: 'encoder_input_tokens' then
        holds the distinct inputs [n_inputs, in_len], row r reads input encoder_row[r], and
        each input is encoded once (rank classification scores one input against each of
        its options: the encoder, most of the work, runs once per input instead of once per
        option). Unpacked batches only.
    Returns:
      float32 [batch]: sum over weighted target positions of log p(target | inputs, prefix).
      A packed row gets the sum over all of its examples.
    """
    model_keys = ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens",
                  "encoder_segment_ids", "decoder_segment_ids", "encoder_positions",
                  "decoder_positions")
    missing = [k for k in model_keys[:3] if k not in batch]
    if missing:
        raise ValueError(f"score() needs batch features {missing}; got {sorted(batch)}.")
    if "encoder_row" in batch:
        packed = [k for k in model_keys[3:] if k in batch]
        if packed:
            raise ValueError(f"score() with 'encoder_row' takes unpacked rows; got {packed}.")
        inputs, rows = batch["encoder_input_tokens"], batch["encoder_row"]
        encoded = model.apply({"params": params}, inputs, enable_dropout=False,
                              method=model.encode)  # [n_inputs, in_len, emb]
        logits = model.apply({"params": params}, encoded[rows], inputs[rows],
                             batch["decoder_input_tokens"], batch["decoder_target_tokens"],
                             enable_dropout=False, method=model.decode)
    else:
        logits = model.apply({"params": params},
                             **{k: batch[k] for k in model_keys if k in batch},
                             enable_dropout=False)
    targets = jnp.asarray(batch["decoder_target_tokens"])
    token_log_probs = _token_log_probs(logits, targets)
    weights = batch.get("decoder_loss_weights")
    weights = (targets > 0) if weights is None else jnp.asarray(weights)
    return jnp.sum(token_log_probs * weights.astype(jnp.float32), axis=-1)


def share_encoder_inputs(batch: Mapping[str, Any], num_shards: int = 1
                         ) -> dict[str, Any] | None:
    """Host-side: the batch with repeated encoder inputs stored once, for `score`.

    batch: numpy features of unpacked rows, 'encoder_input_tokens' [batch, in_len].
    Returns the batch with 'encoder_input_tokens' [n, in_len] (the distinct inputs, in
    order of first appearance, padded with copies of the last one) and 'encoder_row'
    [batch] int32; n is the smallest of batch/8, batch/4, batch/2 that holds them and
    splits into num_shards (few shapes, so few compiles). None when no such size saves
    anything (then score the batch as it is).
    """
    tokens = np.asarray(batch["encoder_input_tokens"])
    size = len(tokens)
    _, first, inverse = np.unique(tokens, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # distinct inputs in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    buckets = [size // d for d in (8, 4, 2) if size % d == 0 and (size // d) % num_shards == 0]
    fitting = [b for b in buckets if b >= len(order)]
    if not fitting:
        return None
    n = min(fitting)
    distinct = tokens[np.sort(first)]
    distinct = np.concatenate([distinct, np.repeat(distinct[-1:], n - len(distinct), axis=0)])
    out = {k: v for k, v in batch.items() if k != "encoder_input_tokens"}
    out["encoder_input_tokens"] = distinct
    out["encoder_row"] = rank[inverse.reshape(-1)].astype(np.int32)
    return out


# ----------------------------------------------------------------------------------------
# The cached decoder step
# ----------------------------------------------------------------------------------------

def _token_log_probs(logits: jax.Array, tokens: jax.Array) -> jax.Array:
    """float32 logits [..., vocab], int tokens [...] -> log p(token) [...].

    For score()'s [batch, length, vocab]: the token's logit minus logsumexp, so no log-softmax
    array is written. From log_softmax and a gather, XLA:CPU fused the max and the subtract
    into the output projection's matmul (YNNPACK), which then ran at half its speed:
    bench-cpu scoring 0.32 -> 0.27-0.29 s per batch (tools/bench_decode.py's shapes, README
    "Benchmarks"); on a v4-8, T5 v1.1 small's score step needs 0.14 GiB of temporaries per
    chip instead of 0.26. Equal to log_softmax's entry up to float rounding.
    """
    logits = logits.astype(jnp.float32)
    token_logits = jnp.take_along_axis(logits, tokens[..., None], axis=-1)[..., 0]
    return token_logits - jax.nn.logsumexp(logits, axis=-1)


def _init_cache(model: t5.Transformer, params: Params, encoded: jax.Array,
                encoder_input_tokens: jax.Array, max_decode_length: int,
                rows_per_input: int = 1) -> Cache:
    """The decoding cache for a batch: self-attention k/v zeros, cross-attention k/v filled.

    encoded [batch, in_len, emb] -> a 'cache' pytree with cache_index 0: cross-attention
    keys and values for the batch's inputs, self-attention ones for batch * rows_per_input
    decoder rows (rows_per_input consecutive rows decode from each input: beam search's
    beams). The creating call runs a start token at position 0 without advancing the index
    (see t5.Decoder), so the first real step overwrites what it wrote.
    """
    start = jnp.zeros((encoded.shape[0] * rows_per_input, 1), jnp.int32)
    _, variables = model.apply({"params": params}, encoded, encoder_input_tokens, start, start,
                               enable_dropout=False, decode=True,
                               max_decode_length=max_decode_length, method=model.decode,
                               mutable=["cache"])
    return variables["cache"]


def _decode_step(model: t5.Transformer, params: Params, cache: Cache, encoded: jax.Array,
                 encoder_input_tokens: jax.Array, tokens: jax.Array,
                 max_decode_length: int) -> tuple[jax.Array, Cache]:
    """Runs the token [rows] at the cache's position -> (logits [rows, vocab], new cache).

    rows is encoded's batch, or a multiple of it as _init_cache was told (beams).
    """
    tokens = tokens[:, None]
    logits, variables = model.apply(
        {"params": params, "cache": cache}, encoded, encoder_input_tokens, tokens, tokens,
        enable_dropout=False, decode=True, max_decode_length=max_decode_length,
        method=model.decode, mutable=["cache"])
    return logits[:, 0, :], variables["cache"]


# ----------------------------------------------------------------------------------------
# Greedy and sampling: one sequence per row
# ----------------------------------------------------------------------------------------

# A token chooser: (float32 logits [batch, vocab], key) -> (int32 token [batch], its float32
# log-probability under the model [batch], log_softmax(logits)[token]).
Chooser = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def _greedy_choice(logits: jax.Array, step_rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The greedy chooser: jnp.argmax's token and its log-probability; ignores the key.

    As T5X: an argmax (a value-and-index reduce), log_softmax and a gather. Lowered for a CPU,
    both come from the row maximum (_greedy_from_maximum): XLA:CPU fused log_softmax's max and
    subtraction into the output projection's matmul (see _token_log_probs), and the tail
    took 3.2 ms per bench-cpu greedy step (1.8 of it the matmul) against 2.4-2.6. On a v4-8
    that form reads more (T5 v1.1 small's generate step: 2.90 GiB against 2.83, XLA's
    estimate), so other platforms keep T5X's.
    """
    del step_rng

    def argmax_and_log_softmax(logits):
        token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        return token, jnp.take_along_axis(log_probs, token[:, None], axis=-1)[:, 0]

    return jax.lax.platform_dependent(logits, cpu=_greedy_from_maximum,
                                      default=argmax_and_log_softmax)


def _greedy_from_maximum(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """jnp.argmax(logits [batch, vocab]) and log_softmax there, from the row maximum m.

    The token is the first index holding m (or the first NaN, as jnp.argmax), and its
    log-probability is -log(sum(exp(logits - m))), exactly log_softmax's entry there. Both
    come from the blocked top-1 (_top_k_by_blocks): a max per block of TOP_K_BLOCK and a
    search of one block, where a compare over the whole row took 0.54-0.61 ms per bench-cpu
    step against 0.15-0.19 (jitted alone, best of 50; README "Scoring distinct rows").
    """
    maximum, token = _top_k_by_blocks(logits, 1, TOP_K_BLOCK)          # [batch, 1] each
    return token[:, 0], -jnp.log(jnp.sum(jnp.exp(logits - maximum), axis=-1))


def _sampler(config: DecodingConfig) -> Chooser:
    """The chooser for method 'sample': a token drawn from the tempered, top-k logits; its
    log-probability under the model's (untempered) distribution."""
    def choose(logits: jax.Array, step_rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        tempered = logits / config.temperature
        if config.top_k:
            kth_largest = jax.lax.top_k(tempered, config.top_k)[0][:, -1:]
            tempered = jnp.where(tempered < kth_largest, -jnp.inf, tempered)
        token = jax.random.categorical(step_rng, tempered, axis=-1).astype(jnp.int32)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        return token, jnp.take_along_axis(log_probs, token[:, None], axis=-1)[:, 0]
    return choose


@flax.struct.dataclass
class _SequentialState:
    """Greedy / sampling loop state."""

    step: jax.Array      # int32 scalar: the position being generated
    tokens: jax.Array    # int32 [batch, length], 0 after EOS and not yet generated
    scores: jax.Array    # float32 [batch], sum of the chosen tokens' log-probs
    done: jax.Array      # bool [batch], EOS emitted
    rng: jax.Array       # PRNG key, split each step
    cache: Cache         # decoding cache over batch rows


def _sequential_decode(model: t5.Transformer, params: Params, encoded: jax.Array,
                       encoder_input_tokens: jax.Array, config: DecodingConfig, eos_id: int,
                       choose: Chooser, rng: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """Greedy or sampled decoding: `choose` picks each step's tokens (see Chooser)."""
    batch, length = encoded.shape[0], config.max_decode_length

    def not_done(state: _SequentialState) -> jax.Array:
        return (state.step < length) & ~jnp.all(state.done)

    def body(state: _SequentialState) -> _SequentialState:
        step = state.step
        # The decoder's input is the previous token; 0 (the start token) at step 0.
        previous = jnp.where(step == 0, 0, state.tokens[:, jnp.maximum(step - 1, 0)])
        logits, cache = _decode_step(model, params, state.cache, encoded,
                                     encoder_input_tokens, previous, length)
        rng, step_rng = jax.random.split(state.rng)
        token, token_log_prob = choose(logits.astype(jnp.float32), step_rng)
        token = jnp.where(state.done, 0, token)
        scores = state.scores + jnp.where(state.done, 0.0, token_log_prob)
        return _SequentialState(step=step + 1, tokens=state.tokens.at[:, step].set(token),
                                scores=scores, done=state.done | (token == eos_id),
                                rng=rng, cache=cache)

    state = _SequentialState(
        step=jnp.zeros((), jnp.int32), tokens=jnp.zeros((batch, length), jnp.int32),
        scores=jnp.zeros((batch,), jnp.float32), done=jnp.zeros((batch,), bool),
        rng=jax.random.key(0) if rng is None else rng,  # greedy ignores it
        cache=_init_cache(model, params, encoded, encoder_input_tokens, length))
    state = jax.lax.while_loop(not_done, body, state)
    return state.tokens, state.scores


# ----------------------------------------------------------------------------------------
# Beam search
# ----------------------------------------------------------------------------------------

@flax.struct.dataclass
class _BeamState:
    """Beam search state; beams sit on axis 1 of [batch, beams, ...] arrays.

    Sequences are [batch, beams, max_decode_length] generated tokens, 0 after the end.
    """

    step: jax.Array                # int32 scalar: the position being generated
    alive_seqs: jax.Array          # int32 [batch, beams, length]
    alive_log_probs: jax.Array     # float32 [batch, beams], sum of token log-probs
    finished_seqs: jax.Array       # int32 [batch, beams, length], ended by EOS
    finished_scores: jax.Array     # float32 [batch, beams], length-penalised; NEG_INF = empty
    cache: Cache                   # decoding cache over batch * beams rows


# Block length of _top_k_by_blocks: on beam 4's [16, 4 x 32,128] candidates, 128 and 256
# took 0.28-0.30 ms against 1.95-2.01 for XLA:CPU's TopK, 1,024 took 1.24-1.30 ms.
TOP_K_BLOCK = 128


def _best_continuations(logits: jax.Array, alive_log_probs: jax.Array,
                        k: int) -> tuple[jax.Array, jax.Array]:
    """The k best one-token continuations of an example's beams.

    logits float32 [batch, beams, vocab]; alive_log_probs [batch, beams] -> the k largest
    alive_log_probs + log p(token), [batch, k], and their indices into beams * vocab.

    As T5X: log-softmax, add, XLA's TopK over [batch, beams * vocab]. Lowered for a CPU, no
    [batch, beams * vocab] array is formed: each beam's offset alive - logsumexp(logits)
    is added to the logits inside _top_k_by_blocks. XLA:CPU fuses log_softmax's max and
    subtraction into the output projection's matmul, where they cost more than the product
    (bench-cpu beam 4: 6.4 ms for a 4.0 ms matmul), and its TopK reads every candidate
    (TOP_K_BLOCK). The values equal log_softmax's to float rounding.
    """
    batch, beams, vocab = logits.shape

    def log_softmax_top_k(logits, alive_log_probs):
        candidates = alive_log_probs[:, :, None] + jax.nn.log_softmax(logits)
        return tuple(jax.lax.top_k(candidates.reshape(batch, -1), k))

    def offsets_top_k(logits, alive_log_probs):
        offsets = alive_log_probs - jax.nn.logsumexp(logits, axis=-1)    # [batch, beams]
        return _top_k_by_blocks(logits.reshape(batch, -1), k, TOP_K_BLOCK, offsets)

    if vocab % TOP_K_BLOCK or k * TOP_K_BLOCK >= beams * vocab:
        return log_softmax_top_k(logits, alive_log_probs)
    return jax.lax.platform_dependent(logits, alive_log_probs, cpu=offsets_top_k,
                                      default=log_softmax_top_k)


def _top_k_by_blocks(x: jax.Array, k: int, block: int, offsets: jax.Array | None = None
                     ) -> tuple[jax.Array, jax.Array]:
    """jax.lax.top_k(x, k) for x [rows, n], found among k blocks of `block` entries.

    With offsets [rows, m], entry i of a row counts as x[i] + offsets[i // (n / m)] (m equal
    segments, e.g. beams, each a whole number of blocks): the top-k of that sum, without
    forming it.

    The k largest entries lie in the k blocks with the largest maxima: a block holding one of
    them has a maximum at least that large, and k other blocks with larger maxima would hold
    k larger entries. XLA:CPU's TopK reads beam search's candidates (batch x beams x vocab)
    at about 1 entry per ns; a max per block, a top-k over the maxima and one over k blocks
    cost a seventh of that (TOP_K_BLOCK). The chosen blocks are gathered in index order, so
    ties resolve as in top_k (the lower index first). Adding an offset rounds monotonically,
    so a block's maximum plus its offset is the maximum of the block's sums.
    """
    rows, n = x.shape
    if offsets is not None and (n % offsets.shape[1] or (n // offsets.shape[1]) % block):
        raise ValueError(f"{offsets.shape[1]} offset segments of a row of {n} entries must "
                         f"each hold a whole number of blocks of {block}.")
    if n % block:
        x = jnp.pad(x, ((0, 0), (0, block - n % block)), constant_values=-jnp.inf)
    blocks = x.reshape(rows, -1, block)                             # [rows, n_blocks, block]
    maxima = jnp.max(blocks, axis=-1)                               # [rows, n_blocks]
    if offsets is not None:
        block_offsets = jnp.repeat(offsets, maxima.shape[1] // offsets.shape[1], axis=1)
        maxima = maxima + block_offsets
    _, chosen = jax.lax.top_k(maxima, k)                            # [rows, k]
    chosen = jnp.sort(chosen, axis=-1)
    candidates = jnp.take_along_axis(blocks, chosen[..., None], axis=1)  # [rows, k, block]
    if offsets is not None:
        candidates = candidates + jnp.take_along_axis(block_offsets, chosen, axis=1)[..., None]
    values, position = jax.lax.top_k(candidates.reshape(rows, k * block), k)
    indices = jnp.take_along_axis(chosen, position // block, axis=1) * block + position % block
    return values, indices


def _gather_beams(x: jax.Array, beam_indices: jax.Array) -> jax.Array:
    """x [batch, old_beams, ...], int [batch, new_beams] -> [batch, new_beams, ...]."""
    return jnp.take_along_axis(x, beam_indices.reshape(beam_indices.shape
                                                       + (1,) * (x.ndim - 2)), axis=1)


def _reorder_cache(cache: Cache, beam_indices: jax.Array) -> Cache:
    """Gives each surviving beam its parent's history: int [batch, beams] parent indices.

    The decoder's self-attention caches hold an example's beams side by side and never move;
    its beam_slots (t5.Decoder) say which slot holds each beam's entry for each position, and
    only they are reordered: [batch, beams, length] int32 instead of every layer's keys and
    values (T5X gathers the whole cache; bench-cpu's beam 4 spent ~5 ms of a ~25 ms step on
    that). Cross-attention keys/values are held once per example and cache_index is shared.
    """
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(cache))
    return flax.traverse_util.unflatten_dict(
        {path: _gather_beams(x, beam_indices) if path[-1] == "beam_slots" else x
         for path, x in flat.items()})


def _beam_search(model: t5.Transformer, params: Params, encoded: jax.Array,
                 encoder_input_tokens: jax.Array, config: DecodingConfig,
                 eos_id: int) -> tuple[jax.Array, jax.Array]:
    """T5X-style beam search; returns the best sequence per example and its score."""
    batch, beams, length = encoded.shape[0], config.num_beams, config.max_decode_length
    alpha = config.length_penalty
    # The decoder runs batch * beams rows; the beams of an example attend to its encoder
    # output, cached once per example (t5.MultiHeadAttention's grouped rows), not copied per
    # beam as T5X does: a step reads the cross-attention keys and values once, not k times.
    cache = _init_cache(model, params, encoded, encoder_input_tokens, length,
                        rows_per_input=beams)

    # Only beam 0 is live at the start, so the first step does not pick k copies of a token.
    initial_log_probs = jnp.tile(jnp.asarray([0.0] + [NEG_INF] * (beams - 1)), (batch, 1))
    state = _BeamState(
        step=jnp.zeros((), jnp.int32),
        alive_seqs=jnp.zeros((batch, beams, length), jnp.int32),
        alive_log_probs=initial_log_probs,
        finished_seqs=jnp.zeros((batch, beams, length), jnp.int32),
        finished_scores=jnp.full((batch, beams), NEG_INF),
        cache=cache)

    def not_done(state: _BeamState) -> jax.Array:
        # The best a live beam can still reach: log-probs only fall as tokens are added, and
        # the penalty's divisor is largest at the longest length.
        best_alive = state.alive_log_probs[:, 0] / brevity_penalty(length, alpha)
        best_finished = jnp.max(state.finished_scores, axis=1)
        return (state.step < length) & ~jnp.all(best_finished >= best_alive)

    def body(state: _BeamState) -> _BeamState:
        step = state.step
        previous = jnp.where(step == 0, 0,
                             state.alive_seqs[:, :, jnp.maximum(step - 1, 0)]).reshape(-1)
        logits, cache = _decode_step(model, params, state.cache, encoded,
                                     encoder_input_tokens, previous, length)
        logits = logits.astype(jnp.float32).reshape(batch, beams, -1)
        vocab = logits.shape[-1]
        # 2k candidates: enough that k of them survive however many end with EOS.
        top_log_probs, top_indices = _best_continuations(logits, state.alive_log_probs,
                                                         2 * beams)
        top_beams, top_tokens = top_indices // vocab, (top_indices % vocab).astype(jnp.int32)
        top_seqs = _gather_beams(state.alive_seqs, top_beams).at[:, :, step].set(top_tokens)
        ended = top_tokens == eos_id

        # Alive: the k best candidates that did not end.
        alive_log_probs, alive_order = jax.lax.top_k(
            jnp.where(ended, NEG_INF, top_log_probs), beams)
        alive_seqs = _gather_beams(top_seqs, alive_order)
        cache = _reorder_cache(cache, _gather_beams(top_beams, alive_order))

        # Finished: merge the newly ended candidates, penalised for length, into the k best.
        new_scores = jnp.where(ended, top_log_probs / brevity_penalty(step + 1, alpha),
                               NEG_INF)
        finished_scores, finished_order = jax.lax.top_k(
            jnp.concatenate([state.finished_scores, new_scores], axis=1), beams)
        finished_seqs = _gather_beams(
            jnp.concatenate([state.finished_seqs, top_seqs], axis=1), finished_order)
        return _BeamState(step=step + 1, alive_seqs=alive_seqs,
                          alive_log_probs=alive_log_probs, finished_seqs=finished_seqs,
                          finished_scores=finished_scores, cache=cache)

    state = jax.lax.while_loop(not_done, body, state)

    # An example with no finished beam (no EOS within max_decode_length) returns its best
    # live beam, scored at the full length.
    alive_scores = state.alive_log_probs[:, 0] / brevity_penalty(length, alpha)
    has_finished = state.finished_scores[:, 0] > NEG_INF / 2
    tokens = jnp.where(has_finished[:, None], state.finished_seqs[:, 0],
                       state.alive_seqs[:, 0])
    scores = jnp.where(has_finished, state.finished_scores[:, 0], alive_scores)
    return tokens, scores
