"""FLAN-style summary of held-out evaluation: per task, the template average and the best
template; per cluster, the means of both.

FLAN (Wei et al., 2021, section 3) evaluates every template of a held-out task separately and
reports the mean over templates ("average template") and the best template ("best dev
template"), then averages tasks within a cluster. Everything here is a pure function of
already-computed metrics, so it is tested with known numbers:

    per_template = {"mini_nli": {0: {"accuracy": 50.0}, 1: {"accuracy": 70.0}}, ...}
    s = summarize(per_template, clusters={"entailment": ["mini_nli", ...]})
    print(to_markdown(s))

Templates whose target is not the task's answer (FLAN's "turned around" templates, e.g.
"write a positive review") are left out with `excluded_templates`. With `held_out` naming the
clusters left out of training, every row is marked "seen" or "held out", so one table shows
what the model learned next to what transferred zero-shot.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os
from typing import Mapping, Sequence

import tensorflow as tf

# Which metric of a task counts in the summary when a task reports several: the first of these
# that the task has, else its first metric in sorted order.
PRIMARY_METRICS = ("accuracy", "f1", "bleu", "rougeLsum", "rouge1", "em", "exact_match")

# Per-template metrics: task -> template index -> metric name -> value. A task evaluated
# without template indices has a single entry under template ALL_TEMPLATES.
PerTemplateMetrics = Mapping[str, Mapping[int, Mapping[str, float]]]
ALL_TEMPLATES = -1


@dataclasses.dataclass(frozen=True)
class TaskRow:
    """One held-out task: `metric` averaged over its templates, and its best template."""

    cluster: str
    task: str
    metric: str
    average: float
    best: float
    best_template: int
    num_templates: int
    held_out: bool | None = None  # None: not known which clusters training saw


@dataclasses.dataclass(frozen=True)
class ClusterRow:
    """Means over a cluster's tasks of their template average and of their best template."""

    cluster: str
    num_tasks: int
    average: float
    best: float
    held_out: bool | None = None


@dataclasses.dataclass(frozen=True)
class Summary:
    tasks: tuple[TaskRow, ...]
    clusters: tuple[ClusterRow, ...]


def primary_metric(metrics: Mapping[str, float]) -> str:
    """The metric that represents a task in the summary (see PRIMARY_METRICS)."""
    if not metrics:
        raise ValueError("A task reported no metrics; nothing to summarise.")
    for name in PRIMARY_METRICS:
        if name in metrics:
            return name
    return sorted(metrics)[0]


def merge_template_tasks(per_template: PerTemplateMetrics,
                         template_tasks: Mapping[str, tuple[str, int]] | None
                         ) -> dict[str, dict[int, Mapping[str, float]]]:
    """Single-template tasks folded into one row per dataset, as the paper's tables.

    FLAN evaluates template i of a dataset as its own task (`rte_type_3_scoring_eval`);
    `template_tasks` maps such a task to (row, i), e.g. ("rte_type_{i}_scoring_eval", 3),
    and its metrics become template i of that row. Tasks not in `template_tasks` pass
    through. E.g. {"t_type_0": {0: m0}, "t_type_1": {0: m1}} with t_type_k -> ("t", k)
    gives {"t": {0: m0, 1: m1}}.

    Raises:
      ValueError: a mapped task was evaluated with several templates, or two tasks map to
        the same row and template.
    """
    merged: dict[str, dict[int, Mapping[str, float]]] = {}
    for task, templates in per_template.items():
        if not template_tasks or task not in template_tasks:
            merged.setdefault(task, {}).update(templates)
            continue
        row, index = template_tasks[task]
        if len(templates) != 1:
            raise ValueError(f"Task {task!r} is merged into row {row!r} as template {index}, "
                             f"but was evaluated with templates {sorted(templates)}; only a "
                             "single-template task can be merged.")
        if index in merged.get(row, {}):
            raise ValueError(f"Two tasks give template {index} of row {row!r} (one is "
                             f"{task!r}); template_tasks must map each to its own index.")
        merged.setdefault(row, {})[index] = next(iter(templates.values()))
    return merged


def summarize(per_template: PerTemplateMetrics,
              clusters: Mapping[str, Sequence[str]] | None = None,
              excluded_templates: Mapping[str, Sequence[int]] | None = None,
              default_cluster: str = "other",
              held_out: Sequence[str] | None = None) -> Summary:
    """Per-task template average and best template, then per-cluster means.

    Args:
      per_template: task -> template index -> metrics (see PerTemplateMetrics).
      clusters: cluster -> task names; a task in no cluster goes to `default_cluster`.
        Clusters and tasks keep the order given here (then unlisted tasks, sorted).
      excluded_templates: task -> template indices to leave out (turned-around templates).
      held_out: the clusters training did not see (None: rows carry held_out=None and the
        tables have no seen / held out column); see check_held_out.
    Returns:
      A Summary; tasks with no template left after exclusion raise a ValueError.
    """
    clusters = dict(clusters or {})
    excluded_templates = excluded_templates or {}
    is_held_out = (lambda cluster: None) if held_out is None else (
        lambda cluster: cluster in held_out)
    cluster_of = {task: c for c, tasks in clusters.items() for task in tasks}
    order = [t for tasks in clusters.values() for t in tasks if t in per_template]
    order += sorted(t for t in per_template if t not in cluster_of)

    rows: list[TaskRow] = []
    for task in dict.fromkeys(order):
        excluded = set(excluded_templates.get(task, ()))
        templates = {i: m for i, m in per_template[task].items() if i not in excluded}
        if not templates:
            raise ValueError(f"Task {task!r} has no template left to summarise (evaluated: "
                             f"{sorted(per_template[task])}, excluded: {sorted(excluded)}).")
        metric = primary_metric(next(iter(templates.values())))
        scores = {i: float(m[metric]) for i, m in templates.items()}
        best_template = max(scores, key=lambda i: (scores[i], -i))
        rows.append(TaskRow(
            cluster=cluster_of.get(task, default_cluster), task=task, metric=metric,
            average=sum(scores.values()) / len(scores), best=scores[best_template],
            best_template=best_template, num_templates=len(scores),
            held_out=is_held_out(cluster_of.get(task, default_cluster))))

    cluster_rows = []
    for cluster in dict.fromkeys(r.cluster for r in rows):
        members = [r for r in rows if r.cluster == cluster]
        cluster_rows.append(ClusterRow(
            cluster=cluster, num_tasks=len(members),
            average=sum(r.average for r in members) / len(members),
            best=sum(r.best for r in members) / len(members), held_out=is_held_out(cluster)))
    return Summary(tasks=tuple(rows), clusters=tuple(cluster_rows))


def check_held_out(held_out: Sequence[str] | None,
                   clusters: Mapping[str, Sequence[str]] | None) -> None:
    """HELDOUT_CLUSTERS must be None or a list of EVAL_CLUSTERS' cluster names."""
    if held_out is None:
        return
    if isinstance(held_out, str) or not isinstance(held_out, Sequence) or not all(
            isinstance(c, str) for c in held_out):
        raise ValueError(f"HELDOUT_CLUSTERS={held_out!r} must be a list of cluster names, e.g. "
                         "['entailment'].")
    unknown = sorted(set(held_out) - set(clusters or {}))
    if unknown:
        raise ValueError(f"HELDOUT_CLUSTERS names {unknown}, which EVAL_CLUSTERS does not "
                         f"define; its clusters are {sorted(clusters or {})}.")


def to_markdown(summary: Summary) -> str:
    """Two Markdown tables: tasks (average / best template), then clusters; a last column
    "training" (seen / held out) when the summary knows the held-out clusters."""
    marked = any(r.held_out is not None for r in summary.clusters)
    extra_head, extra_rule = (" training |", "---|") if marked else ("", "")
    lines = ["| cluster | task | metric | average template | best template (idx) | templates |"
             + extra_head, "|---|---|---|---:|---:|---:|" + extra_rule]
    for r in summary.tasks:
        lines.append(f"| {r.cluster} | {r.task} | {r.metric} | {r.average:.2f} | "
                     f"{r.best:.2f} ({_template_label(r.best_template)}) | {r.num_templates} |"
                     + _training(r.held_out, marked))
    lines += ["", "| cluster | tasks | average template | best template |" + extra_head,
              "|---|---:|---:|---:|" + extra_rule]
    for c in summary.clusters:
        lines.append(f"| {c.cluster} | {c.num_tasks} | {c.average:.2f} | {c.best:.2f} |"
                     + _training(c.held_out, marked))
    return "\n".join(lines) + "\n"


def _training(held_out: bool | None, marked: bool) -> str:
    if not marked:
        return ""
    return " held out |" if held_out else " seen |"


def to_csv(summary: Summary) -> str:
    """One row per task and one per cluster (task column 'ALL')."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cluster", "task", "metric", "average_template", "best_template",
                     "best_template_idx", "num_templates", "training"])
    for r in summary.tasks:
        writer.writerow([r.cluster, r.task, r.metric, f"{r.average:.4f}", f"{r.best:.4f}",
                         r.best_template, r.num_templates, _training_word(r.held_out)])
    for c in summary.clusters:
        writer.writerow([c.cluster, "ALL", "", f"{c.average:.4f}", f"{c.best:.4f}", "",
                         c.num_tasks, _training_word(c.held_out)])
    return out.getvalue()


def write(summary: Summary, output_dir: str) -> tuple[str, str]:
    """Writes output_dir/summary.md and summary.csv; returns their paths."""
    tf.io.gfile.makedirs(output_dir)
    paths = os.path.join(output_dir, "summary.md"), os.path.join(output_dir, "summary.csv")
    for path, text in zip(paths, (to_markdown(summary), to_csv(summary))):
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
    return paths


def _training_word(held_out: bool | None) -> str:
    return "" if held_out is None else "held out" if held_out else "seen"


def _template_label(index: int) -> str:
    return "all" if index == ALL_TEMPLATES else str(index)
