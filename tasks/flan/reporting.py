"""How collection results are reported: the eval split and the summary's clusters.

Bound in gin_configs/runs/eval.gin, so `python -m flan_jax.eval` on a FLAN eval mixture
reports as the FLAN paper does without extra flags:

  eval_split          'test' for FLAN collection tasks: FLAN's "test" mapping, the official
                      validation / test sets (datasets.py); other tasks keep 'validation'.
  eval_clusters       summary cluster -> FLAN task names (every registered variant of each
                      dataset), so no FLAN task lands in the summary's cluster "other";
                      task_clusters does the same for any collection's cluster map.
  excluded_templates  task -> the turned-around templates its summary leaves out, for every
                      dataset registered through registration.register_dataset_tasks
                      (FLAN, mini-FLAN, JSONL data).
  template_tasks      single-template task -> (summary row, template index): the ten
                      `d_type_{i}_scoring_eval` tasks of a dataset become one row
                      `d_type_{i}_scoring_eval` with ten templates, as the paper's tables
                      (bound by gin_configs/experiments/flan2021_eval.gin).

Override either in gin as usual, e.g. --gin.EVAL_SPLIT="'validation'" for the dev carve-out.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import seqio

from flan_jax import data
from flan_jax.templates import Template
from tasks.flan import clusters as clusters_lib
from tasks.flan import registration

FLAN_REPORTING_SPLIT = "test"
OTHER_SPLIT = "validation"
# Translation templates run both directions, and both are translations FLAN reports: there a
# template asks for the answer when its target is one side of the pair and its input holds
# the other (not, e.g., "Write a sentence in {lang1}." or naming the language).
TRANSLATION_CLUSTER = "translation"
OTHER_SIDE = {"{sent1}": "{sent2}", "{sent2}": "{sent1}"}


def eval_split(mixture_or_task_name: str) -> str:
    """'test' when every task of the mixture belongs to the FLAN collection, else 'validation'."""
    provider = data.get_mixture_or_task(mixture_or_task_name)
    flan_tasks = {name for r in registration.REGISTERED.values()
                  if r.collection == registration.FLAN_2021 for name in r.tasks}
    tasks = seqio.get_subtasks(provider)
    return FLAN_REPORTING_SPLIT if all(t.name in flan_tasks for t in tasks) else OTHER_SPLIT


def eval_clusters(paper_clusters: bool = False) -> dict[str, tuple[str, ...]]:
    """Summary cluster -> the task names of its datasets (all registered variants).

    paper_clusters: group by the paper's 12 clusters (clusters.PAPER_CLUSTERS) instead of the
    17 clusters of FLAN's code (clusters.CLUSTERS, the held-out split indices).
    """
    return task_clusters(clusters_lib.PAPER_CLUSTERS if paper_clusters
                         else clusters_lib.CLUSTERS)


def task_clusters(grouping: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """cluster -> datasets (`grouping`) as cluster -> every registered task of those
    datasets, and the summary rows template_tasks merges their single-template tasks into."""
    registered = registration.REGISTERED
    return {cluster: tuple(name for d in members if d in registered
                           for name in registered[d].tasks + _template_rows(d))
            for cluster, members in grouping.items()}


TEMPLATE_SLOT = "{i}"  # stands for the template index in a merged row's name


def _single_template_tasks(dataset: str) -> dict[str, tuple[str, int]]:
    """`dataset`'s `d_type_{i}...` tasks -> (row `d_type_{i}...`, i)."""
    pattern = re.compile(re.escape(dataset) + r"_type_(\d+)(.*)")
    merged = {}
    for name in registration.REGISTERED[dataset].tasks:
        match = pattern.fullmatch(name)
        if match:
            row = f"{dataset}_type_{TEMPLATE_SLOT}{match.group(2)}"
            merged[name] = (row, int(match.group(1)))
    return merged


def _template_rows(dataset: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(row for row, _ in _single_template_tasks(dataset).values()))


def template_tasks() -> dict[str, tuple[str, int]]:
    """Single-template task -> (summary row, template index), every registered dataset:
    `rte_type_3_scoring_eval` -> ("rte_type_{i}_scoring_eval", 3), `rte_type_3_two_shot` ->
    ("rte_type_{i}_two_shot", 3), ... (flan_jax.summary.merge_template_tasks)."""
    merged: dict[str, tuple[str, int]] = {}
    for dataset in registration.REGISTERED:
        merged.update(_single_template_tasks(dataset))
    return merged


def turned_around(dataset: str) -> tuple[int, ...]:
    """Indices of `dataset`'s registered templates that do not ask for the answer.

    The first template of every dataset asks for the answer (FLAN's and mini-FLAN's), so a
    template whose target differs from template 0's is turned around (it asks for an input);
    FLAN's translation templates are judged by `OTHER_SIDE`.
    """
    templates = registration.REGISTERED[dataset].templates
    if dataset in clusters_lib.CLUSTERS[TRANSLATION_CLUSTER]:
        def asks_for_answer(t: Template) -> bool:
            return t.target in OTHER_SIDE and OTHER_SIDE[t.target] in t.input
    else:
        def asks_for_answer(t: Template) -> bool:
            return t.target == templates[0].target
    return tuple(i for i, t in enumerate(templates) if not asks_for_answer(t))


def excluded_templates() -> dict[str, tuple[int, ...]]:
    """Task -> turned-around template indices, for the round-robin `{d}_{N}templates` tasks
    (and their few-shot and `_scoring_eval` variants) and `{d}_all_prompts`, whose examples
    carry their template index, and the rows of template_tasks; every registered dataset of
    every collection.

    A single-template task (`{d}_type_{i}`) is not excluded: evaluating one is a choice.
    """
    excluded: dict[str, tuple[int, ...]] = {}
    for dataset, registered in registration.REGISTERED.items():
        names, skip = registered.tasks, turned_around(dataset)
        if skip and registration.all_prompts_task_name(dataset) in names:
            excluded[registration.all_prompts_task_name(dataset)] = skip
        if skip:  # the rows template_tasks merges a dataset's single-template tasks into
            excluded.update({row: skip for row in _template_rows(dataset)})
        for n in registration.NUM_TEMPLATES_LIST:
            stem = registration.templated_task_name(dataset, n)
            chosen = tuple(i for i in skip if i < n)
            if chosen:
                excluded.update({name: chosen for name in names
                                 if name == stem or name.startswith(stem + "_")})
    return excluded
