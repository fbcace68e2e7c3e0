"""Every FLAN 2021 mixture, member for member, against the table read from FLAN's code.

tests/data/flan/flan_2021_reference.json.gz holds the members of all 1,876 mixtures that
FLAN's flan/mixtures.py registers (tools/flan_reference.py imports FLAN's code to get them).
"""
import os
import random
import re
import sys

import seqio

import tasks  # noqa: F401  (registers everything)
from tasks.flan import clusters, mixtures, patterns, registration

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
import flan_reference  # noqa: E402

FLAN_MIXTURES = flan_reference.load()["mixtures"]
# Ours beyond FLAN's: the paper's instruction ablations, and held-out / overlap splits for
# fewer than 10 templates.
OUR_ADDITIONS = re.compile(
    r"flan_inter_cluster_split_\d+_(no_template|dataset_name)_train"
    r"|flan_inter_cluster_split_\d+_[1247]templates(_\w+_shot)?_(train|eval)"
    r"|flan_all_overlap_[1247]templates_(train|eval)")


def test_every_flan_mixture_is_registered_with_flans_members():
    registered = set(seqio.MixtureRegistry.names())
    missing = sorted(set(FLAN_MIXTURES) - registered)
    assert not missing, f"{len(missing)} of FLAN's mixtures are missing, e.g. {missing[:5]}"
    wrong = [name for name, members in FLAN_MIXTURES.items()
             if sorted(t.name for t in seqio.get_mixture_or_task(name).tasks) != members]
    assert not wrong, f"{len(wrong)} mixtures differ from FLAN's, e.g. {wrong[:5]}"


def test_mixtures_beyond_flans_are_the_listed_additions():
    ours = set(mixtures.mixture_members(registration.datasets_of_patterns(patterns.PATTERNS)))
    extra = sorted(name for name in ours - set(FLAN_MIXTURES) if not OUR_ADDITIONS.fullmatch(name))
    assert not extra, extra[:10]


def test_task_count_ablation_shuffles_everything_then_skips_superglue():
    # FLAN shuffles all 69 datasets with Random(42) and takes the first k non-SuperGLUE
    # ones; shuffling only the non-SuperGLUE datasets would give other members.
    five = FLAN_MIXTURES["flan_superglue_split_10templates_5train_tasks_train"]
    ours = seqio.get_mixture_or_task("flan_superglue_split_10templates_5train_tasks_train")
    assert sorted(t.name for t in ours.tasks) == five
    others = [d for ms in clusters.CLUSTERS.values() for d in ms if d not in clusters.SUPERGLUE]
    random.Random(42).shuffle(others)
    assert sorted(f"{d}_10templates" for d in others[:5]) != five


def test_flan_quirks_in_splits_are_reproduced():
    # tpc splits train on the first 7 clusters of the diversity order, whatever the loop.
    one_tpc = FLAN_MIXTURES["flan_inter_split_10templates_1tpc_train"]
    assert len(one_tpc) == mixtures.TPC_NUM_TRAIN_CLUSTERS == 7
    # 15task_limit: a round robin over the chosen clusters in CLUSTERS order.
    limited = FLAN_MIXTURES["flan_diversity_split7_10templates_15task_limit_train"]
    assert len(limited) == mixtures.TASK_LIMIT
