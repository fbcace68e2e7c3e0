"""The FLAN 2021 collection (Wei et al. 2021) as seqio Tasks and Mixtures.

    datasets.py      every dataset as a DatasetSpec (TFDS name:version, splits, fields, metrics)
    metrics.py       FLAN's own scoring pieces (multi-reference ROUGE, MultiRC grouping)
    clusters.py      the 17 code clusters, the paper's 12, held-out exclusion rules
    patterns.py      our instruction templates in FLAN's PATTERNS format
    registration.py  task / mixture registration under FLAN's names; register_jsonl_task

Importing this package registers every templated dataset and the mixtures over
them. Nothing touches TFDS until a dataset is read; point seqio at prepared data
with tools/prepare_data.py.

FLAN's evident scoring bugs (datasets.FLAN_QUIRKS) are reproduced unless the
environment variable FLAN_JAX_FIX_FLAN_QUIRKS=1 is set before `import tasks`, or
`register(fix_flan_quirks=True)` is called.
"""
import os

from tasks.flan import datasets, patterns, registration

MIXTURES = {}
FIX_QUIRKS_ENV = "FLAN_JAX_FIX_FLAN_QUIRKS"


def register(fix_flan_quirks: bool | None = None) -> dict[str, tuple[str, ...]]:
    """(Re-)registers the templated datasets' tasks and all mixtures; returns the mixtures.

    fix_flan_quirks: fix datasets.FLAN_QUIRKS; None reads FLAN_JAX_FIX_FLAN_QUIRKS ("1": fix).
    """
    if fix_flan_quirks is None:
        fix_flan_quirks = os.environ.get(FIX_QUIRKS_ENV, "0") == "1"
    registration.register_from_patterns(patterns.PATTERNS, datasets.specs(fix_flan_quirks))
    MIXTURES.clear()
    MIXTURES.update(registration.register_mixtures(patterns.PATTERNS))
    return MIXTURES


register()
