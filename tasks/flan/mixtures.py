"""Every mixture of the FLAN 2021 collection, as FLAN's task_splits.py defines it: pure data.

`mixture_members(templated)` returns mixture name -> task names; registration.py registers
them (`{split}_train` examples-proportional, each dataset capped at 3,000 examples;
`{split}_eval` uncapped). For every shot suffix `{shot}` in ("", "_one_shot", ...
"_multi_shot"):

  flan_inter_cluster_split_{idx}_{N}templates{shot}   hold out cluster idx of CLUSTERS
                                                      (FLAN: N = 10 only; we add 1..7)
  flan_intra_cluster_split_{i}_10templates{shot}      hold out one dataset per cluster,
                                                      i = 0..9 (related datasets together)
  flan_all_overlap_{N}templates{shot}                 train = eval = everything
                                                      (FLAN: N = 10; we add 1..7, zero-shot)
  flan_superglue_split_{N}templates{shot}             SuperGLUE held out, N templates
  flan_superglue_split{shot}_10templates_{k}train_tasks   ... and only k training datasets
  flan_diversity_split{c}_{N}templates[_15task_limit]{shot}  c training clusters
  flan_inter_split_{N}templates_{t}tpc{shot}          t datasets per training cluster

plus the paper's instruction ablations, which FLAN's code lacks:
flan_inter_cluster_split_{idx}_{no_template,dataset_name}_train.

Membership equals FLAN's, quirks included (tests/test_flan_mixtures.py checks every one of
FLAN's 1,876 mixtures against a table read from FLAN's code):
  * the task-count ablation shuffles the whole dataset list with random.Random(42) and
    then skips SuperGLUE datasets, so the k training datasets are the first k
    non-SuperGLUE ones of that shuffle;
  * the `tpc` splits always train on the first 7 clusters of DIVERSITY_TRAIN_ORDER (FLAN
    reuses the last cluster count of the loop before them);
  * `15task_limit` keeps the first 15 of a round robin over the chosen clusters, taken
    in CLUSTERS order.
"""
from __future__ import annotations

import random
from typing import Iterable

import numpy as np

from tasks.flan import clusters as clusters_lib

NUM_TEMPLATES_LIST = (1, 2, 4, 7, 10)
# FLAN's few-shot variants: task-name suffix -> number of exemplars (multi: as many
# of 16 as fit the input length).
SHOTS: dict[str, int] = {"_one_shot": 1, "_two_shot": 2, "_three_shot": 3, "_five_shot": 5,
                         "_ten_shot": 10, "_multi_shot": 16}
SHOT_SUFFIXES = ("", *SHOTS)
NUM_TRAIN_TASKS_LIST = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55)  # task-count ablation
NUM_TRAIN_CLUSTERS_LIST = range(1, 8)  # cluster-count ablation
TASK_LIMIT = 15
TASKS_PER_CLUSTER_LIST = (1, 2, 3, 4)
TPC_NUM_TRAIN_CLUSTERS = 7  # FLAN's quirk: the last value of NUM_TRAIN_CLUSTERS_LIST
NUM_INTRA_CLUSTER_SPLITS = 10
SHUFFLE_SEED = 42
ABLATIONS = ("no_template", "dataset_name")
# Datasets that share format and instructions: an intra-cluster split holds them out
# together (FLAN's collapsible tasks; its ai2_arc_with_ir has no dataset here).
RELATED: dict[str, tuple[str, ...]] = {
    "opinion_abstracts": ("opinion_abstracts_rotten_tomatoes", "opinion_abstracts_idebate"),
    "squad": ("squad_v1", "squad_v2"),
    "arc": ("arc_challenge", "arc_easy"),
    "anli": ("anli_r1", "anli_r2", "anli_r3"),
    "mnli": ("mnli_matched", "mnli_mismatched"),
}

Split = tuple[Iterable[str], Iterable[str]]  # (train datasets, eval datasets)


def inter_cluster_split_name(idx: int, variant: str) -> str:
    """FLAN's name stem; variant is "{N}templates", "no_template" or "dataset_name"."""
    return f"flan_inter_cluster_split_{idx}_{variant}"


def _all_datasets() -> list[str]:
    """Every dataset in CLUSTERS order (FLAN concatenates its clusters)."""
    return [d for members in clusters_lib.CLUSTERS.values() for d in members]


def _task_count_ablation(k: int) -> Split:
    shuffled = _all_datasets()
    random.Random(SHUFFLE_SEED).shuffle(shuffled)
    train = [d for d in shuffled if d not in clusters_lib.SUPERGLUE][:k]
    return train, [d for d in shuffled if d in clusters_lib.SUPERGLUE]


def _round_robin(cluster_names: Iterable[str]) -> list[str]:
    """First dataset of each cluster (in CLUSTERS order), then the second of each, ..."""
    chosen = [members for name, members in clusters_lib.CLUSTERS.items()
              if name in set(cluster_names)]
    return [members[i] for i in range(max(map(len, chosen))) for members in chosen
            if i < len(members)]


def _diversity_test() -> list[str]:
    return [d for c in clusters_lib.DIVERSITY_TEST_CLUSTERS for d in clusters_lib.CLUSTERS[c]]


def _intra_cluster_split(split_idx: int) -> Split:
    """Holds out one (collapsed) dataset of every cluster with at least two."""
    collapse = {d: group for group, members in RELATED.items() for d in members}
    train: set[str] = set()
    test: set[str] = set()
    for cluster_idx, members in enumerate(clusters_lib.CLUSTERS.values()):
        # Related datasets become one entry, appended after the others in sorted order.
        entries = [d for d in members if d not in collapse]
        entries += sorted({collapse[d] for d in members if d in collapse})
        if len(entries) <= 1:
            train.update(entries)
            continue
        order = np.random.RandomState(seed=cluster_idx).permutation(len(entries))
        held_out = entries.pop(order[split_idx % len(entries)])
        train.update(entries)
        test.add(held_out)

    def expand(names: set[str]) -> set[str]:
        return {d for name in names for d in RELATED.get(name, (name,))}

    test = expand(test)
    return expand(train) - test, test


def mixture_members(templated: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Every mixture name -> its task names, restricted to `templated` datasets.

    Pure data (no seqio), so tests and tools can inspect the splits. Mixtures left
    with no training or no evaluation task are omitted.
    """
    templated = set(templated)
    members: dict[str, tuple[str, ...]] = {}

    def add(stem: str, split: Split, suffix: str, eval_too: bool = True) -> None:
        train, test = ([d for d in dict.fromkeys(part) if d in templated] for part in split)
        train = [d for d in train if d not in set(test)]  # a held-out dataset never trains
        if not train or not test:
            return
        members[f"{stem}_train"] = tuple(sorted(f"{d}_{suffix}" for d in train))
        if eval_too:
            members[f"{stem}_eval"] = tuple(sorted(f"{d}_{suffix}" for d in test))

    everything = _all_datasets()
    superglue = ([d for d in everything if d not in clusters_lib.SUPERGLUE],
                 [d for d in everything if d in clusters_lib.SUPERGLUE])
    for shot in SHOT_SUFFIXES:
        for n in NUM_TEMPLATES_LIST:
            suffix = f"{n}templates{shot}"
            for idx, cluster in enumerate(clusters_lib.CLUSTERS):
                add(inter_cluster_split_name(idx, suffix),
                    clusters_lib.inter_cluster_split(cluster), suffix)
            if n == 10 or not shot:
                members.update(_overlap(f"flan_all_overlap_{suffix}", everything, templated,
                                        suffix))
            add(f"flan_superglue_split_{suffix}", superglue, suffix)
            for c in NUM_TRAIN_CLUSTERS_LIST:
                rr = _round_robin(clusters_lib.DIVERSITY_TRAIN_ORDER[:c])
                add(f"flan_diversity_split{c}_{suffix}", (rr, _diversity_test()), suffix)
                add(f"flan_diversity_split{c}_{n}templates_{TASK_LIMIT}task_limit{shot}",
                    (rr[:TASK_LIMIT], _diversity_test()), suffix)
            tpc_clusters = [clusters_lib.CLUSTERS[c] for c in
                            clusters_lib.DIVERSITY_TRAIN_ORDER[:TPC_NUM_TRAIN_CLUSTERS]]
            for t in TASKS_PER_CLUSTER_LIST:
                add(f"flan_inter_split_{n}templates_{t}tpc{shot}",
                    ([d for ms in tpc_clusters for d in ms[:t]], _diversity_test()), suffix)
        suffix = f"10templates{shot}"
        for k in NUM_TRAIN_TASKS_LIST:
            add(f"flan_superglue_split{shot}_10templates_{k}train_tasks",
                _task_count_ablation(k), suffix)
        for i in range(NUM_INTRA_CLUSTER_SPLITS):
            add(f"flan_intra_cluster_split_{i}_{suffix}", _intra_cluster_split(i), suffix)
    # Instruction ablations: held-out training mixtures without instructions (their
    # evaluation is the `{N}templates` eval mixture: with instructions).
    for ablation in ABLATIONS:
        for idx, cluster in enumerate(clusters_lib.CLUSTERS):
            add(inter_cluster_split_name(idx, ablation),
                clusters_lib.inter_cluster_split(cluster), ablation, eval_too=False)
    return members


def _overlap(stem: str, datasets: list[str], templated: set[str],
             suffix: str) -> dict[str, tuple[str, ...]]:
    """Train and evaluate on the same datasets (the one split where they overlap)."""
    names = tuple(sorted(f"{d}_{suffix}" for d in datasets if d in templated))
    return {f"{stem}_train": names, f"{stem}_eval": names} if names else {}
