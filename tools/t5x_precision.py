"""bfloat16 logits of flan_jax against T5X's own network, same weights and batch.

T5X is not a dependency: this tool reads t5x/examples/t5/{layers,network}.py from a T5X
checkout (a work tree or a bare git directory, at --commit) into a scratch package, builds
T5X's `network.Transformer` and flan_jax's `t5.Transformer` with the same T5Config values,
initialises T5X's parameters, converts them to flan_jax's layout with
flan_jax.convert.t5x.normalise (the from-t5x path), and compares the logits of one batch:

  - float32 activations (the parity the project keeps: identical up to float rounding);
  - bfloat16 activations, flan_jax's defaults against T5X's defaults;
  - bfloat16 with float32_attention_logits=True on both sides;
  - the tied output projection (T5 v1.0) in bfloat16;
  - dropout 0.1 with the same 'dropout' rng, float32 and bfloat16 (the float32 reference is
    then our float32 model with the same masks).

Each row prints the max absolute difference of the logits on real target positions, the
same relative to the logits' max magnitude, and the share of positions whose argmax agrees;
a float32 reference of the same weights (either model) gives the error of each bf16 model.

    python tools/t5x_precision.py --t5x_repo=/work/.mirror/google-research+t5x/repo
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from flan_jax.convert import t5x as t5x_convert  # noqa: E402
from flan_jax.models import t5  # noqa: E402

_T5X_FILES = ("t5x/examples/t5/layers.py", "t5x/examples/t5/network.py")


def load_t5x_network(repo: str, commit: str):
    """T5X's example network module, read from `repo` at `commit` into a scratch package."""
    scratch = tempfile.mkdtemp(prefix="t5x_network_")
    for package in ("t5x", "t5x/examples", "t5x/examples/t5"):
        os.makedirs(os.path.join(scratch, package), exist_ok=True)
        open(os.path.join(scratch, package, "__init__.py"), "w").close()
    for path in _T5X_FILES:
        if os.path.isfile(os.path.join(repo, path)):
            with open(os.path.join(repo, path)) as f:
                text = f.read()
        else:
            text = subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"], check=True,
                                  capture_output=True, text=True).stdout
        with open(os.path.join(scratch, path), "w") as f:
            f.write(text)
    sys.path.insert(0, scratch)
    return importlib.import_module("t5x.examples.t5.network")


def _batch(config: t5.T5Config, batch: int, inputs: int, targets: int, seed: int) -> dict:
    """Unpacked rows with padding: [batch, inputs] / [batch, targets] int32."""
    rng = np.random.default_rng(seed)
    enc = rng.integers(2, config.vocab_size, (batch, inputs), dtype=np.int32)
    tgt = rng.integers(2, config.vocab_size, (batch, targets), dtype=np.int32)
    for row in range(batch):  # real lengths vary; the rest is padding
        enc[row, rng.integers(inputs // 2, inputs + 1):] = 0
        tgt[row, rng.integers(targets // 2, targets + 1):] = 0
    dec_in = np.concatenate([np.zeros((batch, 1), np.int32), tgt[:, :-1]], axis=1)
    dec_in[tgt == 0] = 0
    return {"encoder_input_tokens": enc, "decoder_input_tokens": dec_in,
            "decoder_target_tokens": tgt}


def _t5x_config(network, config: t5.T5Config, **overrides):
    fields = {f: getattr(config, f) for f in (
        "vocab_size", "emb_dim", "num_heads", "num_encoder_layers", "num_decoder_layers",
        "head_dim", "mlp_dim", "mlp_activations", "dropout_rate", "logits_via_embedding")}
    fields["dtype"] = {"bfloat16": jnp.bfloat16, "float32": jnp.float32}[config.dtype]
    fields.update(overrides)
    return network.T5Config(**fields)


def compare(network, config: t5.T5Config, t5x_overrides: dict, batch: dict, seed: int,
            dropout: bool = False) -> dict:
    """Logits of both models (bf16 or f32 per `config`) against a float32 reference.

    dropout: apply dropout (config.dropout_rate) on both sides with the same 'dropout' rng.
    """
    rngs = {"dropout": jax.random.PRNGKey(seed + 1)}
    t5x_model = network.Transformer(_t5x_config(network, config, **t5x_overrides))
    t5x_params = t5x_model.init(jax.random.PRNGKey(seed), **batch, enable_dropout=False)["params"]
    flat = {"/".join(k): np.asarray(v) for k, v in
            traverse_util.flatten_dict(jax.device_get(t5x_params)).items()}
    ours = traverse_util.unflatten_dict(
        {tuple(k.split("/")): jnp.asarray(v)
         for k, v in t5x_convert.normalise(flat, "T5X init").items()})

    def ours_logits(cfg):
        return t5.Transformer(cfg).apply({"params": ours}, **batch, enable_dropout=dropout,
                                         rngs=rngs)

    reference = np.asarray(ours_logits(dataclasses.replace(config, dtype="float32")),
                           np.float32)
    theirs = np.asarray(t5x_model.apply({"params": t5x_params}, **batch, enable_dropout=dropout,
                                        rngs=rngs), np.float32)
    mine = np.asarray(ours_logits(config), np.float32)
    real = batch["decoder_target_tokens"] > 0
    scale = float(np.abs(reference[real]).max())

    def stats(a, b):
        diff = np.abs(a - b)[real]
        agree = (a.argmax(-1) == b.argmax(-1))[real].mean()
        return {"max_abs": float(diff.max()), "max_rel": float(diff.max() / scale),
                "argmax_agree": float(agree)}
    return {"flan_jax_vs_t5x": stats(mine, theirs),
            "flan_jax_vs_f32": stats(mine, reference),
            "t5x_vs_f32": stats(theirs, reference)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--t5x_repo", required=True,
                        help="a google-research/t5x checkout or bare git directory")
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--emb_dim", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lengths", type=int, nargs=2, default=(64, 32))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    network = load_t5x_network(args.t5x_repo, args.commit)
    base = t5.T5Config(emb_dim=args.emb_dim, num_heads=args.emb_dim // 64, head_dim=64,
                       mlp_dim=2 * args.emb_dim, num_encoder_layers=args.layers,
                       num_decoder_layers=args.layers, dropout_rate=0.0)
    batch = _batch(base, args.batch, *args.lengths, args.seed)
    f32 = dataclasses.replace(base, dtype="float32")
    bf16 = dataclasses.replace(base, dtype="bfloat16")
    rows = {
        "float32": (f32, {}),
        "bfloat16, each side's defaults": (bf16, {}),
        "bfloat16, float32_attention_logits on both": (
            dataclasses.replace(bf16, float32_attention_logits=True),
            {"float32_attention_logits": True}),
        "bfloat16, tied output (v1.0), defaults": (
            dataclasses.replace(bf16, logits_via_embedding=True, mlp_activations=("relu",)),
            {}),
        "float32, dropout 0.1 (same rng)": (dataclasses.replace(f32, dropout_rate=0.1), {}),
        "bfloat16, dropout 0.1 (same rng)": (dataclasses.replace(bf16, dropout_rate=0.1), {}),
    }
    print(json.dumps({"t5x": f"{args.t5x_repo}@{args.commit}", "emb_dim": args.emb_dim,
                      "layers": args.layers, "batch": args.batch, "lengths": args.lengths,
                      "flan_jax_defaults": {"float32_attention_logits":
                                            t5.T5Config().float32_attention_logits}}))
    for name, (config, overrides) in rows.items():
        print(json.dumps({"case": name, **compare(network, config, overrides, batch, args.seed,
                                                  dropout=config.dropout_rate > 0)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
