r"""Instruction tuning beside prompt tuning and LoRA on one held-out split: one table.

    python tools/compare_methods.py --out runs/compare [--cluster entailment] \
        [--seen-cluster sentiment] [--it-steps 300] [--peft-steps 150] [--num-eval-examples 64]

The FLAN argument in one command, on a collection's held-out-cluster split: offline
mini-FLAN (tasks/mini.py, the default) or FLAN 2021 (--collection flan2021, tasks/flan/):

  1. instruction tuning: the whole model trains on every cluster except --cluster
     (mini: mini_flan_heldout_<cluster>_train; FLAN: flan_inter_cluster_split_<i>_10templates
     _train); one model, evaluated zero-shot on the held-out cluster. Starts from --base
     when given (e.g. a flan_jax.convert output, with --model-gin naming its shape), else
     from random init (tiny.gin's shape; mini-FLAN's byte vocabulary). FLAN needs --base.
  2. prompt tuning and 3. LoRA: the instruction-tuned model of step 1 is frozen, and a soft
     prompt / LoRA adapters train on the held-out cluster's own training data (the
     held-out cluster's eval mixture, its train split): a (model, prompt) or (model,
     adapter) pair per task family, as Lester et al. 2021 would deploy it.

Every method is then scored on the held-out cluster and on a seen cluster: mini-FLAN by
rank classification (FLAN's protocol for classification), FLAN 2021 as
gin_configs/experiments/flan2021_eval.gin scores its eval mixtures (FLAN's metrics, the
'test' mapping), both as the cluster averages of flan_jax.summary over answer templates.
Printed: one markdown table with trainable parameters, steps, training seconds (wall
clock, compilation included), held-out and seen scores. The runs stay under --out (each a
normal MODEL_DIR; the PEFT ones hold only the trainable part and point at the
instruction-tuned base).

FLAN 2021 from a converted Flan-T5 / T5 checkpoint, on an accelerator:

    python tools/compare_methods.py --collection flan2021 --cluster entailment \
      --seen-cluster sentiment --base /ckpt/t5-base-fj \
      --model-gin gin_configs/models/t5_1_1/base.gin --vocabulary /ckpt/spiece.model \
      --out /runs/compare --it-steps 2000 --peft-steps 1000 --batch-size 64
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Mapping

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

import tasks  # noqa: E402,F401  (registers mini-FLAN)
from flan_jax import (checkpointing, data, eval as eval_script, evaluation, optim,  # noqa: E402
                      peft, train)
from flan_jax.models import t5  # noqa: E402
from tasks import mini  # noqa: E402
from tasks.flan import reporting  # noqa: E402

COLLECTIONS = ("mini", "flan2021")


@dataclasses.dataclass(frozen=True)
class Split:
    """What one comparison trains on and is scored on: a collection's held-out split."""

    collection: str
    heldout: str                       # the held-out cluster
    seen: str                          # a cluster instruction tuning trained on
    it_mixture: str                    # instruction tuning: every cluster but `heldout`
    peft_mixture: str                  # the held-out cluster's tasks (their train split)
    heldout_eval: str
    seen_eval: str
    eval_split: str
    feature_lengths: Mapping[str, int]
    clusters: Mapping[str, tuple[str, ...]]            # flan_jax.summary's clusters
    excluded_templates: Mapping[str, tuple[int, ...]]
    scoring: str                                       # how, for the table's caption


def mini_split(heldout: str, seen: str) -> Split:
    """mini-FLAN: rank classification on validation, byte-level lengths."""
    return Split(
        "mini-FLAN", heldout, seen, mini.heldout_train_mixture(heldout),
        mini.heldout_eval_mixture(heldout), mini.heldout_scoring_eval_mixture(heldout),
        mini.heldout_scoring_eval_mixture(seen), "validation",
        {"inputs": 256, "targets": 64}, mini.eval_clusters(),
        reporting.excluded_templates(), "rank-classification accuracy (%)")


def flan2021_split(heldout: str, seen: str) -> Split:
    """FLAN 2021's inter-cluster split of `heldout` (FLAN's task_splits.py), 10 templates.

    Scored as flan2021_eval.gin scores: each eval mixture on FLAN's 'test' mapping with
    FLAN's metrics, the seen cluster through its own split's eval mixture.
    """
    from tasks.flan import clusters, mixtures
    names = list(clusters.CLUSTERS)

    def stem(cluster: str) -> str:
        return mixtures.inter_cluster_split_name(names.index(cluster), "10templates")

    trained = set(clusters.inter_cluster_split(heldout)[0])
    if not trained & set(clusters.CLUSTERS[seen]):
        raise ValueError(
            f"FLAN's split holding out {heldout!r} also leaves out {seen!r} "
            f"(clusters.excluded_clusters); pick a --seen-cluster it trains on.")
    heldout_eval = f"{stem(heldout)}_eval"
    return Split(
        "FLAN 2021", heldout, seen, f"{stem(heldout)}_train", heldout_eval, heldout_eval,
        f"{stem(seen)}_eval", reporting.eval_split(heldout_eval),
        {"inputs": 1024, "targets": 256}, reporting.eval_clusters(),
        reporting.excluded_templates(), "FLAN's metric per task")


def cluster_names(collection: str) -> tuple[str, ...]:
    if collection == "mini":
        return tuple(mini.CLUSTERS)
    from tasks.flan import clusters
    return tuple(clusters.CLUSTERS)


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


def _train(method: Method, model_dir: str, batch_size: int,
           feature_lengths: Mapping[str, int]) -> float:
    """Trains one method; returns wall-clock seconds (compilation included)."""
    started = time.perf_counter()
    train.train(
        model_dir=model_dir, model_config=method.model_config,
        train_dataset=data.DatasetConfig(method.mixture, feature_lengths, batch_size=batch_size,
                                         seed=0, pack=method.pack),
        train_steps=method.steps, optimizer=method.optimizer,
        checkpoint=checkpointing.CheckpointConfig(save_every_steps=method.steps, keep=1),
        initial_checkpoint_path=method.initial_checkpoint, log_every_steps=50,
        progress_bar=False)
    return time.perf_counter() - started


def _score(model_dir: str, config: t5.T5Config, split: Split, cluster: str, mixture: str,
           num_examples: int, out_dir: str) -> float:
    """The cluster's average over answer templates on `mixture` (split.eval_split)."""
    run = eval_script.evaluate(
        checkpoint_path=model_dir, output_dir=out_dir, model_config=config,
        eval_dataset=evaluation.EvalConfig(mixture, split.feature_lengths, split=split.eval_split,
                                           batch_size=32, num_examples=num_examples),
        clusters=split.clusters, excluded_templates=split.excluded_templates)
    (row,) = [r for r in run.summary.clusters if r.cluster == cluster]
    return row.average


def _trainable_params(config: t5.T5Config) -> int:
    """What trains: the prompt / LoRA factors of a PEFT config, else every parameter."""
    return config.num_peft_params() if peft.is_peft(config) else config.num_params()


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
    parser.add_argument("--collection", default="mini", choices=COLLECTIONS)
    parser.add_argument("--cluster", default="entailment", help="the held-out cluster")
    parser.add_argument("--seen-cluster", default="sentiment",
                        help="a cluster instruction tuning trains on, scored beside it")
    parser.add_argument("--it-steps", type=int, default=300)
    parser.add_argument("--peft-steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--prompt-length", type=int, default=20)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--num-eval-examples", type=int, default=64,
                        help="first N eval examples (rows) of each eval task")
    parser.add_argument("--base", default=None,
                        help="start instruction tuning from this checkpoint (else random init)")
    parser.add_argument("--model-gin", action="append", default=[],
                        help="model gin file(s) of --base (default: the tiny mini-FLAN shape)")
    parser.add_argument("--vocabulary", default=None,
                        help="SentencePiece model of --base (FLAN tasks; default: T5's)")
    parser.add_argument("--inputs-length", type=int, default=None,
                        help="TASK_FEATURE_LENGTHS['inputs'] (mini 256, FLAN 1024)")
    parser.add_argument("--targets-length", type=int, default=None,
                        help="TASK_FEATURE_LENGTHS['targets'] (mini 64, FLAN 256)")
    args = parser.parse_args(argv)
    known = cluster_names(args.collection)
    for flag, cluster in (("--cluster", args.cluster), ("--seen-cluster", args.seen_cluster)):
        if cluster not in known:
            parser.error(f"{flag} {cluster!r} is not a {args.collection} cluster; choose from "
                         f"{', '.join(known)}.")
    if args.seen_cluster == args.cluster:
        parser.error(f"--seen-cluster must differ from the held-out --cluster {args.cluster!r}.")
    if any(s < 1 for s in (args.it_steps, args.peft_steps)):
        parser.error("--it-steps and --peft-steps must be positive.")
    if args.collection == "flan2021" and not (args.base and args.model_gin):
        parser.error("--collection flan2021 instruction-tunes a pretrained T5: give --base (a "
                     "flan_jax.convert output or a run directory) and --model-gin (its shape), "
                     "and --vocabulary for a SentencePiece model other than T5's.")
    if args.vocabulary:
        from flan_jax import vocabularies
        try:
            vocabularies.set_vocabulary_path(args.vocabulary)
        except FileNotFoundError as e:
            parser.error(f"--vocabulary: {e}")
    make_split = mini_split if args.collection == "mini" else flan2021_split
    try:
        split = make_split(args.cluster, args.seen_cluster)
    except ValueError as e:
        parser.error(str(e))
    lengths = dict(split.feature_lengths)
    lengths.update({k: v for k, v in (("inputs", args.inputs_length),
                                      ("targets", args.targets_length)) if v})
    split = dataclasses.replace(split, feature_lengths=lengths)
    if args.model_gin:
        from flan_jax.convert import checkpoint_io
        try:
            base_config = dataclasses.replace(checkpoint_io.config_from_gin(args.model_gin),
                                              dropout_rate=0.0)
        except (FileNotFoundError, ValueError) as e:
            parser.error(f"--model-gin: {e}")
    else:
        base_config = _tiny_config()
    return compare(split, base_config, checkpointing.absolute_path(args.out), args)


def compare(split: Split, base_config: t5.T5Config, out: str, args) -> list[Row]:
    """Trains the three methods on `split` and prints (and returns) the table's rows."""
    it_dir = os.path.join(out, "instruction_tuning")
    methods = [
        Method("instruction tuning", base_config, split.it_mixture, args.it_steps,
               optim.OptimizerConfig(learning_rate=0.003), True, args.base),
        Method("prompt tuning", dataclasses.replace(base_config, prompt_length=args.prompt_length),
               split.peft_mixture, args.peft_steps, optim.OptimizerConfig(learning_rate=0.3),
               False, it_dir),
        Method("LoRA", dataclasses.replace(base_config, lora_rank=args.lora_rank),
               split.peft_mixture, args.peft_steps,
               optim.OptimizerConfig(learning_rate=0.003, multiply_by_parameter_scale=False),
               True, it_dir),
    ]
    rows = []
    for method in methods:
        model_dir = os.path.join(out, method.name.replace(" ", "_"))
        if os.path.exists(model_dir):
            sys.exit(f"{model_dir} exists; give a new --out so every method trains from its "
                     "start.")
        seconds = _train(method, model_dir, args.batch_size, split.feature_lengths)
        scores = [_score(model_dir, method.model_config, split, cluster, mixture,
                         args.num_eval_examples, os.path.join(model_dir, f"eval_{cluster}"))
                  for cluster, mixture in ((split.heldout, split.heldout_eval),
                                           (split.seen, split.seen_eval))]
        trained_on = ("all but " + split.heldout if method.mixture == split.it_mixture
                      else split.heldout + " (train split)")
        rows.append(Row(method.name, trained_on, _trainable_params(method.model_config),
                        method.steps, seconds, *scores))
    print(f"\nflan_jax: instruction tuning vs prompt tuning vs LoRA, {split.collection}, "
          f"{split.heldout} held out; {split.scoring}, cluster average over answer templates, "
          f"first {args.num_eval_examples} {split.eval_split} examples per task; "
          f"{jax.device_count()} device(s)\n\n"
          f"{to_markdown(rows, split.heldout, split.seen)}", flush=True)
    return rows


if __name__ == "__main__":
    main()
