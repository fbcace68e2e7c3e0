r"""Evaluates a checkpoint on a SeqIO mixture's eval split: the gin entry point.

    python -m flan_jax.eval \
      --gin_file=gin_configs/models/t5_1_1/base.gin \
      --gin_file=gin_configs/runs/eval.gin \
      --gin.CHECKPOINT_PATH="'/tmp/flan_run'" \
      --gin.MIXTURE_OR_TASK_NAME="'mini_flan_heldout_entailment_scoring_eval'" \
      --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 128}" \
      --gin.EVAL_OUTPUT_DIR="'/tmp/flan_eval'"

`evaluate()` reads top to bottom: validate the launch, lay out parameter shapes and
shardings (as training does), restore the params, build the evaluator (data cached, steps
jitted), run it, write the results. It writes, under EVAL_OUTPUT_DIR:
  <task>.json        the task's metrics, overall and per template
  summary.md/.csv    FLAN's per-task average-template / best-template table and cluster means
  <task>/ events     TensorBoard summaries; <task>-metrics.jsonl and inferences (seqio)
"""
from __future__ import annotations

# First, before jax or seqio load: TensorFlow's start-up banners dropped (flan_jax/console.py).
from flan_jax import console  # noqa: F401, I001

import dataclasses
from typing import Mapping, Sequence

import jax

from flan_jax import checkpointing, evaluation, launch, partitioning, paths, summary
from flan_jax.models import t5

REQUIRED_MACROS = ("CHECKPOINT_PATH", "MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS",
                   "EVAL_OUTPUT_DIR")


@dataclasses.dataclass(frozen=True)
class EvalRun:
    """What an evaluation leaves behind."""

    checkpoint: str
    step: int
    output_dir: str
    results: evaluation.EvalResults
    summary: summary.Summary
    summary_paths: tuple[str, ...]


def evaluate(
    *,
    checkpoint_path: str,
    output_dir: str,
    model_config: t5.T5Config,
    eval_dataset: evaluation.EvalConfig,
    partitioning_config: partitioning.PartitioningConfig = partitioning.PartitioningConfig(),
    clusters: Mapping[str, Sequence[str]] | None = None,
    excluded_templates: Mapping[str, Sequence[int]] | None = None,
    held_out_clusters: Sequence[str] | None = None,
    template_tasks: Mapping[str, tuple[str, int]] | None = None,
) -> EvalRun:
    """Restores the params of `checkpoint_path` and evaluates them on `eval_dataset`.

    Args:
      checkpoint_path: a run directory (MODEL_DIR), its checkpoints/ directory, or one step
        directory; the latest step is used unless a step directory is given.
      output_dir: where results go (see the module docstring).
      clusters: cluster -> task names, for the summary (tasks in none: cluster "other").
      excluded_templates: task -> template indices the summary leaves out.
      held_out_clusters: clusters the checkpoint was not trained on; the summary marks each
        row "seen" or "held out" (None: no such column).
      template_tasks: single-template task -> (summary row, template index); the summary
        folds such tasks into one row per dataset (summary.merge_template_tasks).
    """
    # ------------------------------------------------------------------ validate the launch
    # EvalConfig validated its mixture, split and lengths when gin built it; the Evaluator
    # checks the batch size against the mesh and the vocabulary against the model.
    output_dir = paths.output_dir(output_dir, "EVAL_OUTPUT_DIR")
    summary.check_held_out(held_out_clusters, clusters)
    checkpointing.resolve_initial_checkpoint(checkpoint_path, macro="CHECKPOINT_PATH")
    mesh = partitioning.create_mesh(partitioning_config.num_partitions)

    # ------------------------------------------------------------------ shapes and shardings
    model = t5.Transformer(model_config)
    rules = partitioning.logical_axis_rules(partitioning_config.parameter_sharding)

    # ------------------------------------------------------------------ restore the params
    restored = checkpointing.restore_params(checkpoint_path, model, mesh, rules)
    params, step, checkpoint_dir = restored.params, restored.step, restored.checkpoint_dir

    # ------------------------------------------------------------------ data and compiled steps
    evaluator = evaluation.Evaluator(eval_dataset, model, mesh, rules, restored.shardings,
                                     log_dir=output_dir)

    # ------------------------------------------------------------------ evaluate
    try:
        results = evaluator.evaluate(params, step=step)
    finally:
        evaluator.close()

    # ------------------------------------------------------------------ write the results
    table = summary.summarize(
        summary.merge_template_tasks(results.per_template, template_tasks), clusters,
        excluded_templates, held_out=held_out_clusters)
    written: tuple[str, ...] = ()
    if jax.process_index() == 0:
        evaluation.write_results(results, output_dir)
        written = summary.write(table, output_dir)
        print(f"flan_jax: evaluated {checkpoint_dir} step {step} on "
              f"{eval_dataset.mixture_or_task_name!r} ({eval_dataset.split})\n\n"
              f"{summary.to_markdown(table)}\nresults: {output_dir}", flush=True)
    return EvalRun(checkpoint=checkpoint_dir, step=step, output_dir=output_dir,
                   results=results, summary=table, summary_paths=written)


def main(argv: Sequence[str] | None = None) -> EvalRun:
    return launch.run_gin_function(evaluate, argv, "Evaluate a checkpoint on a SeqIO mixture.",
                                   REQUIRED_MACROS)


if __name__ == "__main__":
    # As in flan_jax.train: run the *imported* module's main, the one gin has bound.
    from flan_jax import eval as _entry
    launch.exit_on_user_error(_entry.main, "flan_jax.eval")
