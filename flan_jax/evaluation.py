"""The seqio.Evaluator bridge: generation and rank-classification scoring on the mesh.

seqio.Evaluator owns the eval data (cached once: task features for the metrics, model features
for us) and the metrics; it calls back into

  predict_fn(ds) -> [(index, token ids)]   for tasks whose metrics read predictions
  score_fn(ds)   -> [(index, log-likelihood)]  for tasks whose metrics read scores
                    (rank classification: one row per option, the best total log-likelihood
                    wins; t5.evaluation.metrics.rank_classification does the argmax per idx)

where ds is an enumerated dataset of (index, {encoder_input_tokens, decoder_input_tokens,
decoder_target_tokens, decoder_loss_weights}) rows, unpacked and padded to the configured
lengths. `Evaluator` below batches ds (the last batch padded with copies of its last row,
which are dropped again), runs jitted, sharded flan_jax.models.decoding.generate / score with
explicit shardings (params as in training, rows over 'data', outputs replicated so every
process holds all results) and returns results in order. Each process reads the whole eval set
and feeds its own slice of every global batch, so the same code runs on one or many hosts.

Per-template metrics: mini-FLAN examples carry `template_idx`, so after seqio has computed a
task's metrics we recompute them on each template's examples with the same seqio metric code
(flan_jax.summary turns those into FLAN's average-template / best-template table). Grouping
inside one task needs no extra Task per template (FLAN's `{task}_type_{i}`): the data is read,
cached and scored once, and the overall metric is still the one seqio reports.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from typing import Any, Callable, Iterator, Mapping

import jax
import numpy as np
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

from flan_jax import data, partitioning
from flan_jax import summary as summary_lib
from flan_jax.models import decoding, t5
from flan_jax.preprocessors import TEMPLATE_IDX

TaskMetrics = dict[str, float]


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Which eval data to read and how to batch and decode it.

    Attributes:
      mixture_or_task_name: a registered Task or Mixture with an eval split and metrics. None
        means "no evaluation" (the default of evaluation during training).
      task_feature_lengths: fixed lengths, e.g. {"inputs": 512, "targets": 128}: every batch
        has the same shape, so generate and score compile once for all tasks.
      split: the eval split.
      batch_size: GLOBAL rows per batch (a multiple of the mesh's data axis).
      use_cached: read seqio's offline cache.
      num_examples: evaluate only the first N examples of each task (None: all).
      decoding: how predict_fn generates; None: greedy up to the targets length.
      seed: PRNG seed of decoding.method == "sample".

    Validated once, here: a named mixture is registered, has tasks with `split` and metrics
    (eval_tasks), and TASK_FEATURE_LENGTHS gives exactly its features.
    """

    mixture_or_task_name: str | None
    task_feature_lengths: Mapping[str, int]
    split: str = "validation"
    batch_size: int = 32
    use_cached: bool = False
    num_examples: int | None = None
    decoding: decoding.DecodingConfig | None = None
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 1:
            raise ValueError(f"eval batch_size must be a positive integer, got "
                             f"{self.batch_size!r}.")
        if self.num_examples is not None and (not isinstance(self.num_examples, int)
                                              or self.num_examples < 1):
            raise ValueError(f"num_examples must be None or a positive integer, got "
                             f"{self.num_examples!r}.")
        data.check_feature_length_values(self.task_feature_lengths)
        if self.mixture_or_task_name is not None:
            eval_tasks(self.mixture_or_task_name, self.split)
            data.check_feature_lengths(data.get_mixture_or_task(self.mixture_or_task_name),
                                       self.task_feature_lengths)

    def decoding_config(self) -> decoding.DecodingConfig:
        if self.decoding is not None:
            return self.decoding
        return decoding.DecodingConfig(
            method="greedy", max_decode_length=int(self.task_feature_lengths["targets"]))


@dataclasses.dataclass(frozen=True)
class EvalResults:
    """What one evaluation produced.

    metrics: task -> metric -> value (seqio's numbers, over all of the task's examples).
    per_template: task -> template index -> metric -> value; tasks without template indices
      hold their overall metrics under summary.ALL_TEMPLATES.
    """

    step: int | None
    metrics: dict[str, TaskMetrics]
    per_template: dict[str, dict[int, TaskMetrics]]

    def flat(self, prefix: str = "eval") -> dict[str, float]:
        """{'eval/<task>/<metric>': value}, for metrics.jsonl and TensorBoard."""
        return {f"{prefix}/{task}/{name}": value
                for task, metrics in self.metrics.items() for name, value in metrics.items()}


def eval_tasks(mixture_or_task_name: str, split: str) -> list[seqio.Task]:
    """The tasks of a mixture that can be evaluated on `split`; a clear error when none can."""
    provider = data.get_mixture_or_task(mixture_or_task_name)
    tasks = seqio.get_subtasks(provider)
    with_split = [t for t in tasks if split in t.splits]
    if not with_split:
        splits = sorted({s for t in tasks for s in t.splits})
        raise ValueError(
            f"{mixture_or_task_name!r} has no {split!r} split to evaluate on (its tasks have "
            f"{splits}). Choose an eval mixture (e.g. a *_eval mixture) or set the split.")
    usable = [t for t in with_split if t.metric_fns or t.metric_objs]
    if not usable:
        raise ValueError(
            f"No task of {mixture_or_task_name!r} defines metrics, so there is nothing to "
            "evaluate; give the tasks metric_fns or choose an eval mixture.")
    skipped = sorted(t.name for t in tasks if t not in usable)
    if skipped:
        logging.warning("Not evaluated (no %r split or no metrics): %s", split, skipped)
    return usable


class Evaluator:
    """Evaluates params on a mixture: built once (data cached, steps jitted), run many times.

    Args:
      config: the eval data and decoding settings (mixture_or_task_name must be set; the
        config has validated the rest itself).
      model: the T5 Transformer whose params will be passed to `evaluate`.
      mesh, rules: the mesh and logical-axis rules the params are laid out with.
      param_shardings: pytree of NamedSharding of the params (as in training).
      log_dir: if set (and on process 0), seqio writes TensorBoard summaries under
        log_dir/<task>/ and inferences + metrics as JSON lines under log_dir.
    """

    def __init__(self, config: EvalConfig, model: t5.Transformer, mesh: jax.sharding.Mesh,
                 rules: partitioning.LogicalRules, param_shardings: Any, *,
                 log_dir: str | None = None):
        if not config.mixture_or_task_name:
            raise ValueError("EvalConfig.mixture_or_task_name is not set: name a registered "
                             "eval mixture or task (--gin.MIXTURE_OR_TASK_NAME=...).")
        partitioning.check_batch_size(config.batch_size, mesh)
        data.check_vocabulary_fits(config.mixture_or_task_name, model.config.vocab_size)
        provider = seqio.get_mixture_or_task(config.mixture_or_task_name)
        self.config = config
        self.mesh, self.rules = mesh, rules
        self._decoding = config.decoding_config()
        self._eos_id = provider.output_features["targets"].vocabulary.eos_id
        loggers = ((seqio.TensorBoardLogger, seqio.JSONLogger)
                   if log_dir and jax.process_index() == 0 else ())
        self._seqio = seqio.Evaluator(
            mixture_or_task_name=config.mixture_or_task_name,
            feature_converter=seqio.EncDecFeatureConverter(pack=False),
            eval_split=config.split,
            use_cached=config.use_cached,
            sequence_length=dict(config.task_feature_lengths),
            num_examples=config.num_examples,
            logger_cls=loggers,
            log_dir=log_dir,
            # Metrics run on the host between train steps; no thread racing the devices.
            async_compute_metrics=False,
        )
        # Task features (template_idx, targets, ...) per task, in index order, for the
        # per-template metrics; eval sets are small and this is read once.
        self._examples = {name: list(tfds.as_numpy(ds))
                          for name, ds in self._seqio.cached_task_datasets.items()}

        # Row counts of every device batch divide by this (hosts and data-parallel devices).
        self._batch_shards = int(np.lcm(partitioning.data_parallel_size(mesh),
                                        jax.process_count()))
        batch_sharding = partitioning.batch_sharding(mesh)
        replicated = partitioning.replicated(mesh)
        self._batch_sharding = batch_sharding
        self._score, self._generate = jit_eval_steps(
            model, self._decoding, self._eos_id, param_shardings, batch_sharding, replicated)
        self._rng = jax.random.PRNGKey(config.seed)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self._seqio.eval_tasks]

    @property
    def model_datasets(self) -> Mapping[str, tf.data.Dataset]:
        """task -> the enumerated (index, model features) dataset seqio hands to our fns."""
        return self._seqio.cached_model_datasets

    @property
    def task_examples(self) -> Mapping[str, list[dict[str, Any]]]:
        """task -> its examples with task features (inputs, targets, template_idx, ...)."""
        return self._examples

    # ------------------------------------------------------------------ seqio callbacks
    def score_fn(self, params: Any) -> Callable[[tf.data.Dataset], list[tuple[int, float]]]:
        """seqio's score_fn for `params`: total log-likelihood of each row's targets."""
        def score_fn(ds: tf.data.Dataset) -> list[tuple[int, float]]:
            results = []
            for indices, batch in self._batches(ds):
                # Rank-classification rows repeat their input once per option: encode each
                # input once (decoding.score with 'encoder_row').
                batch = decoding.share_encoder_inputs(batch, self._batch_shards) or batch
                scores = self._score(params, self._to_device(batch))
                results += zip(indices.tolist(), np.asarray(scores)[:len(indices)].tolist())
            return results
        return score_fn

    def predict_fn(self, params: Any, with_aux: bool = False) -> Callable[[tf.data.Dataset], Any]:
        """seqio's predict_fn (or predict_with_aux_fn) for `params`: generated token ids."""
        def predict_fn(ds: tf.data.Dataset):
            results, all_scores = [], []
            for number, (indices, batch) in enumerate(self._batches(ds)):
                rng = jax.random.fold_in(self._rng, number)
                inputs = self._to_device({"encoder_input_tokens": batch["encoder_input_tokens"]})
                tokens, scores = self._generate(params, inputs["encoder_input_tokens"], rng)
                tokens = np.asarray(tokens)[:len(indices)]
                results += zip(indices.tolist(), list(tokens))
                all_scores += np.asarray(scores)[:len(indices)].tolist()
            return (results, {"scores": all_scores}) if with_aux else results
        return predict_fn

    def _batches(self, ds: tf.data.Dataset) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """(indices [n], features [batch_size, length]) with n <= batch_size real rows."""
        size = self.config.batch_size

        def pad(rows: np.ndarray) -> np.ndarray:
            # Copies of the last row: a well-formed input whose output is dropped again.
            missing = size - len(rows)
            return np.concatenate([rows, np.repeat(rows[-1:], missing, axis=0)]) if missing \
                else rows

        for indices, features in tfds.as_numpy(ds.batch(size)):
            yield indices, {k: pad(v.astype(np.int32)) for k, v in features.items()}

    def _to_device(self, batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
        """Global batch (same on every process) -> this process's rows -> global arrays."""
        count, index = jax.process_count(), jax.process_index()
        local = {k: np.split(v, count)[index] for k, v in batch.items()}
        return data.to_global_arrays(local, self._batch_sharding)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, params: Any, step: int | None = None) -> EvalResults:
        """Runs every task once; returns its metrics, overall and per template."""
        with partitioning.sharding_context(self.mesh, self.rules):
            future, outputs = self._seqio.evaluate(
                compute_metrics=True, step=step,
                predict_fn=self.predict_fn(params), score_fn=self.score_fn(params),
                predict_with_aux_fn=self.predict_fn(params, with_aux=True))
        all_metrics = future.result() or {}
        metrics = {task: _floats(m) for task, m in all_metrics.items()}
        per_template = {}
        for task in self._seqio.eval_tasks:
            per_template[task.name] = (
                per_template_metrics(task, self._examples[task.name], outputs[task.name])
                or {summary_lib.ALL_TEMPLATES: metrics[task.name]})
        return EvalResults(step=step, metrics=metrics, per_template=per_template)

    def close(self) -> None:
        self._seqio.close()


def jit_eval_steps(model: t5.Transformer, decoding_config: decoding.DecodingConfig,
                   eos_id: int, param_shardings: Any, batch_sharding: Any, replicated: Any
                   ) -> tuple[Callable, Callable]:
    """The two jitted evaluation steps, shared by Evaluator and flan_jax.aot.

    score(params, batch) -> per-row log-likelihoods; generate(params, encoder_input_tokens
    [batch, in_len], rng) -> (tokens [batch, max_decode_length], scores [batch]). Outputs are
    replicated: every process gets every row back for seqio's metrics.
    """
    score = jax.jit(functools.partial(decoding.score, model),
                    in_shardings=(param_shardings, batch_sharding), out_shardings=replicated)
    generate = jax.jit(
        functools.partial(_generate, model=model, config=decoding_config, eos_id=eos_id),
        in_shardings=(param_shardings, batch_sharding, replicated),
        out_shardings=(replicated, replicated))
    return score, generate


def _generate(params, encoder_input_tokens, rng, *, model, config, eos_id):
    """[batch, in_len] -> (tokens [batch, max_decode_length], scores [batch])."""
    return decoding.generate(model, params, encoder_input_tokens, config, rng=rng,
                             eos_id=eos_id)


def _floats(metrics: Mapping[str, Any]) -> TaskMetrics:
    """Scalar metrics as Python floats (seqio may hand back numpy scalars or Scalar objects)."""
    out = {}
    for name, value in metrics.items():
        value = getattr(value, "value", value)
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            logging.info("Metric %s is not a scalar; left out of the summary.", name)
    return out


def per_template_metrics(task: seqio.Task, examples: list[Mapping[str, Any]],
                         outputs: Mapping[Any, Any]) -> dict[int, TaskMetrics]:
    """The task's metric_fns on each template's examples; {} when examples carry no template.

    Args:
      task: the seqio Task (its metric_fns and postprocess_fn are used, as seqio uses them).
      examples: the task's cached examples (task features), in index order.
      outputs: seqio's model outputs for the task: ModelOutputType -> per-example outputs
        in index order (what Evaluator.evaluate returns as all_outputs[task]).
    """
    if not examples or TEMPLATE_IDX not in examples[0]:
        return {}
    templates = np.array([int(ex[TEMPLATE_IDX]) for ex in examples])
    results: dict[int, TaskMetrics] = {}
    for template in sorted(set(templates.tolist())):
        rows = np.flatnonzero(templates == template)
        subset = [examples[i] for i in rows]
        merged: TaskMetrics = {}
        for metric_fn in task.metric_fns:
            metric = seqio.metrics.LegacyMetric.empty(metric_fn, task.postprocess_fn)
            output = outputs[metric.model_output_type]
            if isinstance(output, tuple):  # (predictions, aux values)
                output = (np.array([output[0][i] for i in rows]),
                          jax.tree.map(lambda v: np.array([v[i] for i in rows]), output[1],
                                       is_leaf=lambda x: isinstance(x, list)))
            else:
                output = np.array([output[i] for i in rows])
            merged.update(metric.from_model_output(subset, output, task.output_features)
                          .compute())
        results[template] = _floats(merged)
    return results


def write_results(results: EvalResults, output_dir: str) -> list[str]:
    """output_dir/<task>.json per task: {step, metrics, per_template}; returns the paths."""
    tf.io.gfile.makedirs(output_dir)
    paths = []
    for task, metrics in results.metrics.items():
        path = os.path.join(output_dir, f"{task}.json")
        record = {"step": results.step, "metrics": metrics,
                  "per_template": {str(k): v for k, v in results.per_template[task].items()}}
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths
