"""The FLAN 2021 collection (Wei et al. 2021) as seqio Tasks and Mixtures.

    datasets.py      every dataset as a DatasetSpec (TFDS name:version, splits, fields, metrics)
    metrics.py       FLAN's own scoring pieces (multi-reference ROUGE, MultiRC grouping)
    clusters.py      the 17 code clusters, the paper's 12, held-out exclusion rules
    patterns.py      our instruction templates, shaped like FLAN's PATTERNS
    registration.py  task / mixture registration under FLAN's names; register_jsonl_task
    continuations.py FLAN's `continuations_*` baselines (plain continuation prompts)

Importing this package registers every templated dataset and the mixtures over
them. Nothing touches TFDS until a dataset is read; point seqio at prepared data
with tools/prepare_data.py.

FLAN's evident scoring bugs (datasets.FLAN_QUIRKS) are reproduced unless the
environment variable FLAN_JAX_FIX_FLAN_QUIRKS=1 is set before `import tasks`, or
`register(fix_flan_quirks=True)` is called. FLAN's dialog wrapper around every input
("0 {input} X 1 FLAN", for its LaMDA-PT model) is off unless FLAN_JAX_FLAN_DIALOG_PROMPT=1
or `register(dialog_prompt=True)`.
"""
import os

from tasks.flan import continuations, datasets, patterns, registration

MIXTURES = {}
FIX_QUIRKS_ENV = "FLAN_JAX_FIX_FLAN_QUIRKS"
DIALOG_PROMPT_ENV = "FLAN_JAX_FLAN_DIALOG_PROMPT"


def register(fix_flan_quirks: bool | None = None,
             dialog_prompt: bool | None = None) -> dict[str, tuple[str, ...]]:
    """(Re-)registers the templated datasets' tasks, the continuation baselines and all
    mixtures; returns the mixtures.

    fix_flan_quirks: fix datasets.FLAN_QUIRKS; None reads FLAN_JAX_FIX_FLAN_QUIRKS ("1": fix).
    dialog_prompt: wrap inputs as FLAN's LaMDA-PT runs did; None reads
      FLAN_JAX_FLAN_DIALOG_PROMPT ("1": wrap).
    """
    if fix_flan_quirks is None:
        fix_flan_quirks = os.environ.get(FIX_QUIRKS_ENV, "0") == "1"
    if dialog_prompt is None:
        dialog_prompt = os.environ.get(DIALOG_PROMPT_ENV, "0") == "1"
    specs = datasets.specs(fix_flan_quirks)
    registration.register_from_patterns(patterns.PATTERNS, specs, dialog_prompt=dialog_prompt)
    continuations.register(specs, fix_flan_quirks=fix_flan_quirks)
    MIXTURES.clear()
    MIXTURES.update(registration.register_mixtures(
        registration.datasets_of_patterns(patterns.PATTERNS, specs)))
    return MIXTURES


register()
