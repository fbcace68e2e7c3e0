"""The FLAN 2021 collection (Wei et al. 2021) as seqio Tasks and Mixtures.

    datasets.py      every dataset as a DatasetSpec (TFDS name:version, splits, fields, metrics)
    clusters.py      the 17 code clusters, the paper's 12, held-out exclusion rules
    patterns.py      our instruction templates in FLAN's PATTERNS format
    registration.py  task / mixture registration under FLAN's names; register_jsonl_task

Importing this package registers every templated dataset and the mixtures over
them. Nothing touches TFDS until a dataset is read; point seqio at prepared data
with tools/prepare_data.py.
"""
from tasks.flan import patterns, registration

MIXTURES = {}


def register() -> dict[str, tuple[str, ...]]:
    """(Re-)registers the templated datasets' tasks and all mixtures; returns the mixtures."""
    registration.register_from_patterns(patterns.PATTERNS)
    MIXTURES.clear()
    MIXTURES.update(registration.register_mixtures(patterns.PATTERNS))
    return MIXTURES


register()
