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
"write a positive review") are left out with `excluded_templates`.
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


@dataclasses.dataclass(frozen=True)
class ClusterRow:
    """Means over a cluster's tasks of their template average and of their best template."""

    cluster: str
    num_tasks: int
    average: float
    best: float


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


def summarize(per_template: PerTemplateMetrics,
              clusters: Mapping[str, Sequence[str]] | None = None,
              excluded_templates: Mapping[str, Sequence[int]] | None = None,
              default_cluster: str = "other") -> Summary:
    """Per-task template average and best template, then per-cluster means.

    Args:
      per_template: task -> template index -> metrics (see PerTemplateMetrics).
      clusters: cluster -> task names; a task in no cluster goes to `default_cluster`.
        Clusters and tasks keep the order given here (then unlisted tasks, sorted).
      excluded_templates: task -> template indices to leave out (turned-around templates).
    Returns:
      A Summary; tasks with no template left after exclusion raise a ValueError.
    """
    clusters = dict(clusters or {})
    excluded_templates = excluded_templates or {}
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
            best_template=best_template, num_templates=len(scores)))

    cluster_rows = []
    for cluster in dict.fromkeys(r.cluster for r in rows):
        members = [r for r in rows if r.cluster == cluster]
        cluster_rows.append(ClusterRow(
            cluster=cluster, num_tasks=len(members),
            average=sum(r.average for r in members) / len(members),
            best=sum(r.best for r in members) / len(members)))
    return Summary(tasks=tuple(rows), clusters=tuple(cluster_rows))


def to_markdown(summary: Summary) -> str:
    """Two Markdown tables: tasks (average / best template), then clusters."""
    lines = ["| cluster | task | metric | average template | best template (idx) | templates |",
             "|---|---|---|---:|---:|---:|"]
    for r in summary.tasks:
        lines.append(f"| {r.cluster} | {r.task} | {r.metric} | {r.average:.2f} | "
                     f"{r.best:.2f} ({_template_label(r.best_template)}) | {r.num_templates} |")
    lines += ["", "| cluster | tasks | average template | best template |",
              "|---|---:|---:|---:|"]
    for c in summary.clusters:
        lines.append(f"| {c.cluster} | {c.num_tasks} | {c.average:.2f} | {c.best:.2f} |")
    return "\n".join(lines) + "\n"


def to_csv(summary: Summary) -> str:
    """One row per task and one per cluster (task column 'ALL')."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["cluster", "task", "metric", "average_template", "best_template",
                     "best_template_idx", "num_templates"])
    for r in summary.tasks:
        writer.writerow([r.cluster, r.task, r.metric, f"{r.average:.4f}", f"{r.best:.4f}",
                         r.best_template, r.num_templates])
    for c in summary.clusters:
        writer.writerow([c.cluster, "ALL", "", f"{c.average:.4f}", f"{c.best:.4f}", "",
                         c.num_tasks])
    return out.getvalue()


def write(summary: Summary, output_dir: str) -> tuple[str, str]:
    """Writes output_dir/summary.md and summary.csv; returns their paths."""
    tf.io.gfile.makedirs(output_dir)
    paths = os.path.join(output_dir, "summary.md"), os.path.join(output_dir, "summary.csv")
    for path, text in zip(paths, (to_markdown(summary), to_csv(summary))):
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
    return paths


def _template_label(index: int) -> str:
    return "all" if index == ALL_TEMPLATES else str(index)
