r"""Instruction tuning beside prompt tuning and LoRA on one held-out split: one table.

    python tools/compare_methods.py --out runs/compare [--cluster entailment] \
        [--seen-cluster sentiment] [--it-steps 300] [--peft-steps 150] [--num-eval-examples 64]

The FLAN argument in one command, on offline mini-FLAN (tasks/mini.py):

  1. instruction tuning: the whole model trains on every cluster except --cluster
     (mini_flan_heldout_<cluster>_train); one model, evaluated zero-shot on the held-out
     cluster. Starts from --base when given (e.g. a flan_jax.convert output, with
     --model-gin naming its shape), else from random init (tiny.gin's shape; mini-FLAN's
     byte vocabulary).
  2. prompt tuning and 3. LoRA: the instruction-tuned model of step 1 is frozen, and a soft
     prompt / LoRA adapters train on the held-out cluster's own training data
     (mini_flan_heldout_<cluster>_eval, its train split): a (model, prompt) or (model,
     adapter) pair per task family, as Lester et al. 2021 would deploy it.

Every method is then scored by rank classification (FLAN's protocol) on the held-out
cluster's and on a seen cluster's validation examples (the cluster averages of
flan_jax.summary, over answer templates). Printed: one markdown table with trainable
parameters, steps, training seconds (wall clock, compilation included), held-out and seen
scores. The runs stay under --out (each a normal MODEL_DIR; the PEFT ones hold only the
trainable part and point at the instruction-tuned base).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

import tasks  # noqa: E402,F401  (registers mini-FLAN)
from flan_jax import (checkpointing, data, eval as eval_script, evaluation, optim,  # noqa: E402
                      partitioning, peft, train, trainer)
from flan_jax.models import t5  # noqa: E402
from tasks import mini, mini_eval  # noqa: E402

FEATURE_LENGTHS = {"inputs": 256, "targets": 64}


@dataclasses.dataclass(frozen=True)
class Method:
    """One row of the comparison: how to train and on what."""

    name: str
    model_config: t5.T5Config
    mixture: str
    steps: int
    optimizer: optim.OptimizerConfig
    pack: bool
    initial_checkpoint: str | None


@dataclasses.dataclass(frozen=True)
class Row:
    method: str
    trained_on: str
    trainable_params: int
    steps: int
    seconds: float
    heldout: float
    seen: float


def _tiny_config() -> t5.T5Config:
    """gin_configs/models/t5_1_1/tiny.gin's shape with mini-FLAN's padded byte vocabulary."""
    return t5.T5Config(vocab_size=384, emb_dim=128, num_heads=4, num_encoder_layers=2,
                       num_decoder_layers=2, head_dim=32, mlp_dim=256, dropout_rate=0.0,
                       dtype="float32")


def _train(method: Method, model_dir: str, batch_size: int) -> float:
    """Trains one method; returns wall-clock seconds (compilation included)."""
    started = time.perf_counter()
    train.train(
        model_dir=model_dir, model_config=method.model_config,
        train_dataset=data.DatasetConfig(method.mixture, FEATURE_LENGTHS, batch_size=batch_size,
                                         seed=0, pack=method.pack),
        train_steps=method.steps, optimizer=method.optimizer,
        checkpoint=checkpointing.CheckpointConfig(save_every_steps=method.steps, keep=1),
        initial_checkpoint_path=method.initial_checkpoint, log_every_steps=50,
        progress_bar=False)
    return time.perf_counter() - started


def _score(model_dir: str, config: t5.T5Config, cluster: str, num_examples: int,
           out_dir: str) -> float:
    """Rank-classification cluster average (answer templates) on cluster's validation split."""
    mixture = mini_eval.heldout_scoring_eval_mixture(cluster)
    run = eval_script.evaluate(
        checkpoint_path=model_dir, output_dir=out_dir, model_config=config,
        eval_dataset=evaluation.EvalConfig(mixture, FEATURE_LENGTHS, batch_size=32,
                                           num_examples=num_examples),
        clusters=mini_eval.eval_clusters(), excluded_templates=mini_eval.excluded_templates())
    (row,) = [r for r in run.summary.clusters if r.cluster == cluster]
    return row.average


def _trainable_params(config: t5.T5Config) -> int:
    mesh = partitioning.create_mesh(1)
    program = trainer.build_train_program(config, optim.make_optimizer(optim.OptimizerConfig()),
                                          trainer.LossConfig(), mesh)
    return program.num_trainable_params


def to_markdown(rows: list[Row], cluster: str, seen: str) -> str:
    lines = [f"| method | trained on | trainable params | steps | seconds | held-out "
             f"{cluster} | seen {seen} |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.method} | {r.trained_on} | {r.trainable_params:,} | {r.steps} | "
                     f"{r.seconds:.0f} | {r.heldout:.1f} | {r.seen:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the runs and evaluations")
    parser.add_argument("--cluster", default="entailment", choices=sorted(mini.CLUSTERS))
    parser.add_argument("--seen-cluster", default="sentiment", choices=sorted(mini.CLUSTERS))
    parser.add_argument("--it-steps", type=int, default=300)
    parser.add_argument("--peft-steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--prompt-length", type=int, default=20)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--num-eval-examples", type=int, default=64,
                        help="first N validation examples of each eval task")
    parser.add_argument("--base", default=None,
                        help="start instruction tuning from this checkpoint (else random init)")
    parser.add_argument("--model-gin", action="append", default=[],
                        help="model gin file(s) of --base (default: the tiny mini-FLAN shape)")
    args = parser.parse_args(argv)
    if args.seen_cluster == args.cluster:
        parser.error(f"--seen-cluster must differ from the held-out --cluster {args.cluster!r}.")
    if any(s < 1 for s in (args.it_steps, args.peft_steps)):
        parser.error("--it-steps and --peft-steps must be positive.")
    if args.model_gin:
        from flan_jax.convert import checkpoint_io
        base_config = dataclasses.replace(checkpoint_io.config_from_gin(args.model_gin),
                                          dropout_rate=0.0)
    else:
        base_config = _tiny_config()
    out = checkpointing.absolute_path(args.out)
    it_dir = os.path.join(out, "instruction_tuning")
    heldout_data = mini.heldout_eval_mixture(args.cluster)
    methods = [
        Method("instruction tuning", base_config, mini.heldout_train_mixture(args.cluster),
               args.it_steps, optim.OptimizerConfig(learning_rate=0.003), True, args.base),
        Method("prompt tuning", dataclasses.replace(base_config, prompt_length=args.prompt_length),
               heldout_data, args.peft_steps, optim.OptimizerConfig(learning_rate=0.3), False,
               it_dir),
        Method("LoRA", dataclasses.replace(base_config, lora_rank=args.lora_rank),
               heldout_data, args.peft_steps,
               optim.OptimizerConfig(learning_rate=0.003, multiply_by_parameter_scale=False),
               True, it_dir),
    ]
    rows = []
    for method in methods:
        model_dir = os.path.join(out, method.name.replace(" ", "_"))
        if os.path.exists(model_dir):
            sys.exit(f"{model_dir} exists; give a new --out so every method trains from its "
                     "start.")
        seconds = _train(method, model_dir, args.batch_size)
        scores = [_score(model_dir, method.model_config, c, args.num_eval_examples,
                         os.path.join(model_dir, f"eval_{c}"))
                  for c in (args.cluster, args.seen_cluster)]
        trained_on = ("all but " + args.cluster if method.mixture != heldout_data
                      else args.cluster + " (train split)")
        rows.append(Row(method.name, trained_on, _trainable_params(method.model_config),
                        method.steps, seconds, *scores))
    print(f"\nflan_jax: instruction tuning vs prompt tuning vs LoRA, mini-FLAN, {args.cluster} "
          f"held out; rank-classification accuracy (%), cluster average over answer templates, "
          f"first {args.num_eval_examples} validation examples per task; {jax.device_count()} "
          f"device(s)\n\n{to_markdown(rows, args.cluster, args.seen_cluster)}", flush=True)
    return rows


if __name__ == "__main__":
    main()
