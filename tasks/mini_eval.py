"""Rank-classification ("scoring") eval variants of mini-FLAN's classification tasks.

FLAN evaluates classification by rank classification: every answer option is scored by the
model's log-likelihood and the most likely option is the prediction, so a model is never
penalised for answering in another format. For each classification task of tasks/mini.py
this registers

    {task}_scoring_eval   the same examples and templates, one row per option
                          (flan_jax.preprocessors.rank_classification_expand), scored with
                          t5.evaluation.metrics.rank_classification (accuracy)

and for every cluster the eval mixture

    mini_flan_heldout_{cluster}_scoring_eval   scoring variants of the cluster's
                                               classification tasks + its generation tasks

and, the same over every cluster (a held-out run's seen clusters next to its held-out one),

    mini_flan_all_scoring_eval

Turned-around templates ("write a positive review") have no option as their target; the
expansion drops them, so scoring variants are evaluated on answer templates only. For the
generation tasks, `excluded_templates()` names them so the summary leaves them out.
"""
from __future__ import annotations

import functools

import seqio
from t5.data import postprocessors as t5_postprocessors
from t5.evaluation import metrics as t5_metrics

from flan_jax import preprocessors
from tasks import mini

SCORING_SUFFIX = "_scoring_eval"
ALL_SCORING_EVAL_MIXTURE = "mini_flan_all_scoring_eval"


def scoring_task_name(task_name: str) -> str:
    return task_name + SCORING_SUFFIX


def heldout_scoring_eval_mixture(cluster: str) -> str:
    """The eval mixture of `cluster`, classification tasks scored by rank classification."""
    return f"mini_flan_heldout_{cluster}_scoring_eval"


CLASSIFICATION_TASKS: tuple[str, ...] = tuple(t for t in mini.TASK_NAMES if mini.task_options(t))


def _eval_task_name(task_name: str) -> str:
    return scoring_task_name(task_name) if task_name in CLASSIFICATION_TASKS else task_name


def eval_clusters() -> dict[str, tuple[str, ...]]:
    """cluster -> the names its tasks are evaluated under (both generation and scoring)."""
    return {cluster: tuple(dict.fromkeys(
                list(tasks) + [_eval_task_name(t) for t in tasks]))
            for cluster, tasks in mini.CLUSTERS.items()}


def excluded_templates() -> dict[str, tuple[int, ...]]:
    """Eval task -> templates the summary skips: turned-around templates of generation tasks.

    (Scoring variants have dropped those examples already.)
    """
    return dict(mini.TURNED_AROUND)


def _register_scoring_task(task_name: str) -> None:
    base = seqio.get_mixture_or_task(task_name)
    name = scoring_task_name(task_name)
    seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        name,
        source=base.source,
        preprocessors=[
            functools.partial(preprocessors.apply_templates, templates=mini.TEMPLATES[task_name]),
            preprocessors.rank_classification_expand,
            seqio.preprocessors.tokenize,
            seqio.CacheDatasetPlaceholder(),
            seqio.preprocessors.append_eos_after_trim,
        ],
        output_features=mini.OUTPUT_FEATURES,
        postprocess_fn=t5_postprocessors.rank_classification,
        metric_fns=[t5_metrics.rank_classification],
    )


def register() -> None:
    for task_name in CLASSIFICATION_TASKS:
        _register_scoring_task(task_name)
    for cluster, tasks in mini.CLUSTERS.items():
        name = heldout_scoring_eval_mixture(cluster)
        seqio.MixtureRegistry.remove(name)
        seqio.MixtureRegistry.add(name, [_eval_task_name(t) for t in tasks], default_rate=1.0)
    seqio.MixtureRegistry.remove(ALL_SCORING_EVAL_MIXTURE)
    seqio.MixtureRegistry.add(ALL_SCORING_EVAL_MIXTURE,
                              [_eval_task_name(t) for t in mini.TASK_NAMES], default_rate=1.0)


register()
