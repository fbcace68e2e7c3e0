"""Model FLOPs of one T5 encoder-decoder training step (the numerator of MFU), and of one
forward pass (teacher-forced scoring).

Used by tools/bench.py (MFU), tools/bench_decode.py (scoring's GFLOP/s) and flan_jax.aot
(compiled FLOPs against the model's). The formula:

    6 x [N_enc*T_enc + N_dec*T_dec + N_crossKV*T_enc + N_lmhead*T_dec]
    + 12 x joined x batch x sum over attention layers of (Lq x Lk)

"Model FLOPs" count the work the model needs, not what an implementation happens to do:
no rematerialisation, no masked-out work skipped (the causal half of decoder self-attention
is counted, as XLA computes it), and no elementwise ops (norms, softmax, GELU), which are a
fraction of a percent here. The input embedding is a gather, so it costs no FLOPs.
"""
from __future__ import annotations

import dataclasses

from flan_jax.models import t5


@dataclasses.dataclass(frozen=True)
class FlopBreakdown:
    """FLOPs of one forward + backward pass, by term of the DESIGN formula."""

    encoder_matmuls: int  # 6 * N_enc * T_enc
    decoder_matmuls: int  # 6 * N_dec * T_dec
    cross_kv_matmuls: int  # 6 * N_crossKV * T_enc
    lm_head: int  # 6 * N_lmhead * T_dec
    attention: int  # 12 * joined * batch * sum(Lq * Lk)

    @property
    def total(self) -> int:
        return (self.encoder_matmuls + self.decoder_matmuls + self.cross_kv_matmuls
                + self.lm_head + self.attention)


def train_step_flops(config: t5.T5Config, batch_size: int, input_length: int,
                     target_length: int) -> FlopBreakdown:
    """Model FLOPs of one training step (forward + backward) on unpacked [batch, length] rows.

    Each weight matrix entry does one multiply-add (2 FLOPs) per token on the forward pass and
    two on the backward pass (gradient w.r.t. the input and w.r.t. the weight), hence
    6 x params x tokens for every matmul, counted against the tokens that matrix sees.
    """
    d, joined, ff = config.emb_dim, config.num_heads * config.head_dim, config.mlp_dim
    t_enc, t_dec = batch_size * input_length, batch_size * target_length

    # q, k, v project d -> joined, out projects joined -> d.
    attention_proj = 4 * d * joined
    # One d -> ff projection per activation (2 for gated GELU), one ff -> d back.
    mlp = (len(config.mlp_activations) + 1) * d * ff
    # Encoder layer: self-attention + MLP, all on encoder tokens.
    n_enc = config.num_encoder_layers * (attention_proj + mlp)
    # Decoder layer on decoder tokens: self-attention, the cross-attention q and out
    # projections, and the MLP. The cross-attention k and v run on the encoder output, so
    # they are counted against encoder tokens in n_cross_kv.
    n_dec = config.num_decoder_layers * (attention_proj + 2 * d * joined + mlp)
    n_cross_kv = config.num_decoder_layers * 2 * d * joined
    # The output projection: tied (v1.0) or logits_dense (v1.1), d x vocab either way.
    n_lm_head = d * config.vocab_size

    # Attention proper: q.k^T and weights.v each cost 2 x joined FLOPs per (query, key) pair
    # forward, x3 with the backward pass -> 12 x joined per pair. (DESIGN.md writes d_model
    # for joined = heads x head_dim; the two are equal in bench-cpu and in T5 v1.1 small.)
    pairs = (config.num_encoder_layers * input_length * input_length        # encoder self
             + config.num_decoder_layers * target_length * target_length     # decoder self
             + config.num_decoder_layers * target_length * input_length)     # cross
    return FlopBreakdown(
        encoder_matmuls=6 * n_enc * t_enc,
        decoder_matmuls=6 * n_dec * t_dec,
        cross_kv_matmuls=6 * n_cross_kv * t_enc,
        lm_head=6 * n_lm_head * t_dec,
        attention=12 * joined * batch_size * pairs,
    )


def forward_flops(config: t5.T5Config, batch_size: int, input_length: int,
                  target_length: int) -> int:
    """Model FLOPs of one forward pass over [batch, length] rows: what scoring them costs.

    A third of the training step's: 2 FLOPs per weight matrix entry per token (the backward
    pass adds 4) and 4 x joined per attention (query, key) pair (of 12). Every term of
    train_step_flops carries a factor of 6 or 12, so the division is exact.
    """
    return train_step_flops(config, batch_size, input_length, target_length).total // 3
