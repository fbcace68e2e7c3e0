"""Compile time of the train step with and without scanned layers, on this machine's CPU.

    .venv/bin/python tools/scan_compile_time.py [--layers 2 12 24]

Builds the real step (trainer.build_train_program: model, Adafactor, layout, jit) for the
model of gin_configs/models/t5_1_1/tiny.gin (its widths; the depth per stack from --layers),
lowers it for a packed batch of 8 x (128 inputs, 32 targets) and compiles it for the CPU,
once unscanned and once with T5Config.scan_layers. Prints one markdown row per depth: the
CPU seconds (all threads of this process) to lower + compile each, and their ratio; CPU
time, because wall time on a shared machine measures the other jobs too. Nothing runs; no
data is read.
"""
from __future__ import annotations

import argparse
import time

import jax

from flan_jax import optim, partitioning, trainer
from flan_jax.models import t5

TINY = dict(vocab_size=32128, emb_dim=128, num_heads=4, head_dim=32, mlp_dim=256,
            mlp_activations=("gelu", "linear"), dtype="float32")


def compile_seconds(num_layers: int, scan_layers: bool) -> float:
    """CPU seconds to lower and compile one train step of the tiny model at this depth."""
    config = t5.T5Config(num_encoder_layers=num_layers, num_decoder_layers=num_layers,
                         scan_layers=scan_layers, **TINY)
    mesh = partitioning.create_mesh(1, jax.devices()[:1])
    program = trainer.build_train_program(config, optim.make_optimizer(
        optim.OptimizerConfig()), trainer.LossConfig(), mesh)
    start = time.process_time()
    with program.sharding_context():
        program.step_fn.lower(program.layout.abstract,
                              program.abstract_batch(8, {"inputs": 128, "targets": 32}),
                              program.abstract_key()).compile()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 12, 24],
                        help="layers per stack (encoder and decoder each)")
    args = parser.parse_args()
    print("| layers per stack | compile, unscanned | compile, scanned | ratio |")
    print("|---:|---:|---:|---:|")
    for n in args.layers:
        looped, scanned = compile_seconds(n, False), compile_seconds(n, True)
        print(f"| {n} + {n} | {looped:.1f} CPU s | {scanned:.1f} CPU s | "
              f"{looped / scanned:.1f}x |",
              flush=True)


if __name__ == "__main__":
    main()
