"""Registers FLAN 2021 tasks and mixtures with seqio under FLAN's names.

Per templated dataset `d` (its templates t_0..t_9):

  d_{N}templates                 training task, first N templates round robin,
                                 N in NUM_TEMPLATES_LIST (1, 2, 4, 7, 10)
  d_type_{i}                     generation eval with template i only
  ..._one_shot, _two_shot, _three_shot, _five_shot, _ten_shot, _multi_shot
                                 few-shot variants of the two above: FLAN's
                                 exemplar format and 960-token pruning
                                 (fewshot_format); _multi_shot: up to 16
  d_type_{i}_scoring_eval        rank classification with template i: one
                                 (inputs, option) row per answer choice, correct
                                 where the option is the gold answer (every
                                 template of a classification dataset, as FLAN),
                                 and its few-shot variants
  d_{N}templates_scoring_eval    rank classification with the first N templates
                                 round robin, as d_{N}templates reads them (ours,
                                 not FLAN's: one pass over the examples gives the
                                 per-template table, where the d_type_{i} tasks
                                 read every example N times)
  d_type_{i}_score_eval_no_options, d_type_{i}_score_flan_no_options
                                 the same without the options in the input
  d_all_prompts                  every template round robin (FLAN's older name)
  d_no_template, d_dataset_name  the paper's two instruction ablations
                                 (flan_jax.templates.no_template / dataset_name)

Mixtures: every split of mixtures.py (FLAN's task_splits.py) as `{split}_train`
(examples-proportional, each dataset capped at MIXING_CAP = 3,000) and
`{split}_eval` (uncapped); and, ours, `flan_inter_cluster_split_{idx}_paper_eval`: the
held-out cluster with every template on the whole eval split, rank classification for
classification data (paper_eval_tasks), as the paper's results tables.

This is the one task factory of every collection: FLAN 2021 (register_flan_dataset),
mini-FLAN (tasks/mini.py) and a user's JSONL data (register_jsonl_task) all register
through register_dataset_tasks, so names, scoring tasks and the summary's template
handling (tasks/flan/reporting.py) are the same for all of them.

Registration builds seqio objects only: no TFDS builder is created and
nothing is read until a dataset is requested.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
from typing import Any, Callable, Iterable, Mapping, Sequence

import seqio
import tensorflow as tf
import tensorflow_datasets as tfds
from t5.data import postprocessors as t5_post
from t5.data import preprocessors as t5_preprocessors
from t5.evaluation import metrics as t5_metrics

from flan_jax import preprocessors
from flan_jax import templates as templates_lib
from flan_jax import vocabularies
from flan_jax.templates import Template
from tasks.flan import clusters as clusters_lib
from tasks.flan import mixtures as mixtures_lib
from tasks.flan import patterns as patterns_lib
from tasks.flan.datasets import DATASETS, DatasetSpec
from tasks.flan.mixtures import ABLATIONS, NUM_TEMPLATES_LIST, SHOTS  # noqa: F401

MIXING_CAP = 3000

OUTPUT_FEATURES: dict[str, seqio.Feature] = {
    "inputs": seqio.Feature(vocabulary=vocabularies.ConfiguredVocabulary(), add_eos=True),
    "targets": seqio.Feature(vocabulary=vocabularies.ConfiguredVocabulary(), add_eos=True),
}

PREPARE_HINT = ("Prepare it first: python tools/prepare_data.py --data_dir=DIR "
                "--datasets={name}, then point seqio at DIR "
                "(seqio.set_tfds_data_dir_override or TFDS_DATA_DIR).")


# ---------------------------------------------------------------------------
# Names.


def templated_task_name(dataset: str, num_templates: int) -> str:
    return f"{dataset}_{num_templates}templates"


def eval_task_name(dataset: str, template_idx: int) -> str:
    return f"{dataset}_type_{template_idx}"


def scoring_eval_task_name(dataset: str, template_idx: int) -> str:
    return f"{dataset}_type_{template_idx}_scoring_eval"


def round_robin_scoring_task_name(dataset: str, num_templates: int) -> str:
    return f"{dataset}_{num_templates}templates_scoring_eval"


def all_prompts_task_name(dataset: str) -> str:
    return f"{dataset}_all_prompts"  # every template, round robin (FLAN's older name)


# Rank classification with the `{options_}` slot removed from the input: FLAN registers
# the same task under two names (for its baseline and for FLAN runs).
NO_OPTIONS_VARIANTS = ("score_eval_no_options", "score_flan_no_options")


def ablation_task_name(dataset: str, ablation: str) -> str:
    return f"{dataset}_{ablation}"  # ablation: "no_template" or "dataset_name"



# ---------------------------------------------------------------------------
# Data source: TFDS with the 30k training cap and a useful error when absent.


class FlanTfdsSource(seqio.TfdsDataSource):
    """TfdsDataSource that says how to prepare a dataset that is not there.

    The splits are FLAN's slices (datasets.py), so the training subset is the same
    fixed first 30,000 examples on every epoch and host (seqio shards the slice).
    """

    def get_dataset(self, split=None, shuffle=True, seed=None, shard_info=None, **kwargs):
        try:
            return super().get_dataset(split, shuffle=shuffle, seed=seed, shard_info=shard_info,
                                       **kwargs)
        except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError,
                tf.errors.NotFoundError) as e:
            raise RuntimeError(
                f"TFDS dataset {self.tfds_dataset.name!r} is not available in data_dir "
                f"{self.tfds_dataset.data_dir or tfds.core.constants.DATA_DIR!r}: {e}\n"
                + PREPARE_HINT.format(name=self.tfds_dataset.name)) from e

    def num_input_examples(self, split: str) -> int | None:
        try:
            return super().num_input_examples(split)
        except KeyError:
            # No split metadata: the dataset is unprepared (get_dataset then raises with
            # PREPARE_HINT) or mocked by tfds.testing.mock_data. Unknown either way.
            name = self.tfds_dataset.name
            logging.warning("%s: no split sizes. %s", name, PREPARE_HINT.format(name=name))
            return None


def to_fields(dataset: tf.data.Dataset, spec: DatasetSpec) -> tf.data.Dataset:
    """Raw TFDS examples -> the flat template fields of `spec`."""
    if spec.keep is not None:
        dataset = dataset.filter(spec.keep)
    return dataset.map(spec.to_fields, num_parallel_calls=tf.data.AUTOTUNE)


def source_for(spec: DatasetSpec) -> seqio.DataSource:
    # read_only: reading never starts a download on a training host (seqio's default
    # would); data is prepared explicitly with tools/prepare_data.py.
    return FlanTfdsSource(tfds_name=spec.tfds_name, splits=dict(spec.splits), read_only=True)


# ---------------------------------------------------------------------------
# Few-shot formatting: FLAN's flan/few_shot.py register_few_shot_version_of_task.


@dataclasses.dataclass(frozen=True)
class FewshotFormat:
    """The strings that join exemplars and the eval input into one few-shot input.

    The five arguments of FLAN's register_few_shot_version_of_task, used as it uses them:
    each exemplar reads inputs_prefix + input + x_y_delimiter + targets_prefix + target +
    example_separator; the eval input follows as inputs_prefix + input + x_y_delimiter +
    targets_prefix (right-stripped); the whole is stripped and final_suffix appended.
    """

    x_y_delimiter: str
    inputs_prefix: str
    targets_prefix: str
    example_separator: str
    final_suffix: str


# FLAN's defaults, used for all its instruction tasks: LaMDA-PT's dialog turns. The
# exemplars lose their own dialog wrapper and the whole input gets one, so a 2-shot input
# reads "0 x1 X 1 y1 X 0 x2 X 1 y2 X 0 x X 1 FLAN" (zero-shot: "0 x X 1 FLAN").
DIALOG_FEWSHOT = FewshotFormat(x_y_delimiter=" X ", inputs_prefix="0 ", targets_prefix="1 ",
                               example_separator=" X ", final_suffix=" FLAN")
# FLAN's format for inputs without the dialog wrapper (its continuations_* baselines):
# "x1 y1\n\nx2 y2\n\nx". Ours whenever the dialog switch is off (README, "Fidelity to FLAN").
PLAIN_FEWSHOT = FewshotFormat(x_y_delimiter=" ", inputs_prefix="", targets_prefix="",
                              example_separator="\n\n", final_suffix="")
# FLAN's pruning budget: exemplars are kept, in order, while their tokens plus the eval
# input's stay within 960 (FLAN's tasks.py: its input length of 1024 less 64 tokens kept
# for the prefixes and separators, which the count leaves out).
FEWSHOT_MAX_INPUT_LENGTH = 960


def _num_tokens(vocabulary: seqio.Vocabulary, texts: tf.Tensor) -> tf.Tensor:
    """Tokens of each string of `texts` [n] (no EOS): int32 [n]."""
    return tf.map_fn(lambda s: tf.size(vocabulary.encode_tf(s)), texts,
                     fn_output_signature=tf.int32)


def fewshot_format(dataset: tf.data.Dataset,
                   output_features: Mapping[str, seqio.Feature] | None = None, *,
                   fmt: FewshotFormat = PLAIN_FEWSHOT,
                   max_input_length: int | None = FEWSHOT_MAX_INPUT_LENGTH) -> tf.data.Dataset:
    """Forms FLAN's few-shot inputs from FewshotDataSource examples.

    Input examples: {"train": {"inputs": [k], "targets": [k]}, "eval": {"inputs": [],
    "targets": [], ...}}. With `max_input_length` (FLAN's prune_exemplars), exemplars are
    kept in order while the running sum of their tokens (input + x_y_delimiter, and target)
    is at most max_input_length minus the tokens of the eval input + x_y_delimiter, as
    FLAN's get_fewshot_num_tokens / prune_fewshot_examples_by_length count them (no
    prefixes, separators or EOS); the eval input is always kept. Output: the eval example
    with "inputs" replaced ("targets", "options", "template_idx" ... pass through).
    """
    vocab = {}
    if max_input_length is not None:
        if isinstance(max_input_length, bool) or not isinstance(max_input_length, int) \
                or max_input_length < 1:
            raise ValueError(
                f"fewshot_format: max_input_length={max_input_length!r} is no token count; "
                f"give a positive int (FLAN's is {FEWSHOT_MAX_INPUT_LENGTH}), or None to keep "
                "every exemplar.")
        if not output_features:
            raise ValueError(
                f"fewshot_format prunes exemplars to max_input_length={max_input_length} "
                "tokens and needs the task's output_features to count them; pass "
                "output_features, or max_input_length=None to keep every exemplar.")
        vocab = {k: output_features[k].vocabulary for k in ("inputs", "targets")}

    def form(ex):
        train, final = ex["train"], ex["eval"]
        shot_inputs = train["inputs"] + fmt.x_y_delimiter  # [k]
        shot_targets = train["targets"]  # [k]
        eval_inputs = final["inputs"] + fmt.x_y_delimiter
        if max_input_length is not None:
            shot_tokens = (_num_tokens(vocab["inputs"], shot_inputs)
                           + _num_tokens(vocab["targets"], shot_targets))
            eval_tokens = tf.size(vocab["inputs"].encode_tf(eval_inputs))
            keep = tf.cumsum(shot_tokens) <= max_input_length - eval_tokens
            shot_inputs = tf.boolean_mask(shot_inputs, keep)
            shot_targets = tf.boolean_mask(shot_targets, keep)
        shots = tf.strings.reduce_join(fmt.inputs_prefix + shot_inputs + fmt.targets_prefix
                                       + shot_targets + fmt.example_separator)
        inputs = shots + fmt.inputs_prefix + eval_inputs + fmt.targets_prefix.rstrip()
        out = dict(final)
        out["inputs"] = tf.strings.strip(inputs) + fmt.final_suffix
        return out

    return dataset.map(form, num_parallel_calls=tf.data.AUTOTUNE)


# The few-shot step of every instruction task, by dialog switch; built once, as
# registration adds thousands of few-shot tasks.
FEWSHOT_STEPS = {dialog: functools.partial(fewshot_format, fmt=fmt,
                                           max_input_length=FEWSHOT_MAX_INPUT_LENGTH)
                 for dialog, fmt in ((False, PLAIN_FEWSHOT), (True, DIALOG_FEWSHOT))}
# FLAN's continuations_* baselines (register_few_shot_versions_of_continuations_task): its
# format without dialog markers, and no pruning.
CONTINUATIONS_FEWSHOT_STEP = functools.partial(fewshot_format, fmt=PLAIN_FEWSHOT,
                                               max_input_length=None)


# ---------------------------------------------------------------------------
# Tasks.


def rank_classification_from_answer(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """FLAN's scoring rows: one per option, correct where the option is the gold answer.

    Input: templated examples with "inputs", "options", "answer" (and, where a dataset has
    several gold answers, "answers": any of them is correct, e.g. ReCoRD). As in FLAN, the
    template's target plays no part, so turned-around templates get scoring tasks too
    (scoring the options after a turned-around input), and an example whose answer is no
    option keeps its rows, none of them correct. Output as
    flan_jax.preprocessors.rank_classification_expand: "inputs", "targets" (the option),
    "is_correct", "idx" [example, option], "template_idx".
    """
    options = templates_lib.OPTIONS_FIELD

    def is_correct(ex):
        if "answers" in ex:
            return tf.reduce_any(tf.equal(ex[options][:, None], ex["answers"][None, :]), axis=1)
        return tf.equal(ex[options], ex["answer"])

    return t5_preprocessors.rank_classification(
        dataset,
        inputs_fn=lambda ex: tf.fill(tf.shape(ex[options]), ex["inputs"]),
        targets_fn=lambda ex: ex[options], is_correct_fn=is_correct, mode="eval",
        passthrough_feature_keys=[preprocessors.TEMPLATE_IDX])


def add_task(name: str, source: seqio.DataSource, field_preprocessors: Sequence[Callable],
              templates: Sequence[Template], *, scoring: bool = False, shots: int = 0,
              dialog_prompt: bool = False, fewshot_step: Callable | None = None,
              postprocess_fn=None, metric_fns=(), eval_fields: Sequence[str] = (),
              output_features: Mapping[str, seqio.Feature] | None = None) -> None:
    """Registers one task (register_dataset_tasks registers a dataset's many through it;
    continuations.py its baselines). With `shots`, exemplars are joined by `fewshot_step`
    (default FEWSHOT_STEPS[dialog_prompt]: FLAN's instruction-task format and budget)."""
    if scoring:  # the gold answer(s) decide which option rows are correct
        eval_fields = ("answer", *(f for f in eval_fields if f == "answers"))
    if dialog_prompt and not shots:
        templates = with_dialog_prompt(templates)

    def templating(passthrough=tuple(eval_fields)):
        return [*field_preprocessors,
                functools.partial(preprocessors.apply_templates, templates=tuple(templates),
                                  passthrough=passthrough)]
    if shots:
        # As FLAN's few_shot.py: exemplars come from train, templated like the eval example
        # (without the eval fields: exemplars are batched, and e.g. answer lists differ in
        # length) but without a dialog wrapper each; the few-shot step joins them, prunes
        # them to FLAN's budget and, with the dialog switch on, wraps the whole input.
        source = seqio.experimental.FewshotDataSource(
            source, num_shots=shots, train_preprocessors=templating(()),
            eval_preprocessors=templating(), train_split="train",
            train_feature_keys=("inputs", "targets"))
        steps = [fewshot_step or FEWSHOT_STEPS[dialog_prompt]]
    else:
        steps = templating()
    if scoring:  # after the few-shot step: every option row holds the exemplars (FLAN's order)
        steps.append(rank_classification_from_answer)
        postprocess_fn, metric_fns = t5_post.rank_classification, (t5_metrics.rank_classification,)
    steps.append(seqio.preprocessors.tokenize)
    if not shots:  # exemplars are drawn afresh each pass, so few-shot data is not cacheable
        steps.append(seqio.CacheDatasetPlaceholder())
    steps.append(seqio.preprocessors.append_eos_after_trim)
    seqio.TaskRegistry.remove(name)  # re-import replaces instead of raising
    seqio.TaskRegistry.add(name, source=source, preprocessors=steps,
                           output_features=output_features or OUTPUT_FEATURES,
                           postprocess_fn=postprocess_fn,
                           metric_fns=list(metric_fns))


# FLAN's formatters end with reformat_with_flan_dialog_prompt: every input (templated,
# scoring, few-shot) is wrapped in LaMDA-PT's dialog markers. Off by default for T5 models,
# which were not pre-trained on that dialog format (README, "Fidelity to FLAN").
DIALOG_PREFIX, DIALOG_SUFFIX = "0 ", " X 1 FLAN"


def with_dialog_prompt(templates: Sequence[Template]) -> list[Template]:
    """The templates with FLAN's dialog wrapper around their inputs: "0 {input} X 1 FLAN"."""
    return [Template(DIALOG_PREFIX + t.input + DIALOG_SUFFIX, t.target) for t in templates]


# What FLAN's `_no_options` scoring removes from an input: the rendered choices, and
# ReCoRD's choices, which its examples carry as one prepared string.
OPTIONS_SLOTS = ("{" + templates_lib.OPTIONS_SLOT + "}", "{options_str}")


def without_options(template: Template) -> Template:
    """The template with its choices removed (FLAN's `_no_options` scoring)."""
    text = template.input
    for slot in OPTIONS_SLOTS:
        text = text.replace(slot, "")
    return Template(text.strip(), template.target)


FLAN_2021 = "flan2021"  # Registered.collection of the FLAN 2021 datasets (register_flan_dataset)
CUSTOM = "custom"  # the default: a user's datasets (register_jsonl_task, direct calls)


@dataclasses.dataclass(frozen=True)
class Registered:
    """What register_dataset_tasks registered for one dataset (read by tasks.flan.reporting)."""

    tasks: tuple[str, ...]
    templates: tuple[Template, ...]
    collection: str  # FLAN_2021, "mini_flan", CUSTOM, ...: which reporting rules apply


REGISTERED: dict[str, Registered] = {}  # dataset -> its tasks and templates, every collection


def register_dataset_tasks(
    dataset: str,
    templates: Sequence[Template],
    *,
    source: seqio.DataSource,
    field_preprocessors: Sequence[Callable] = (),
    available_fields: Iterable[str],
    is_classification: bool,
    cluster: str = "Custom",
    postprocess_fn=None,
    metric_fns: Sequence[Callable] = (t5_metrics.accuracy,),
    eval_fields: Sequence[str] = (),
    dialog_prompt: bool = False,
    output_features: Mapping[str, seqio.Feature] | None = None,
    collection: str = CUSTOM,
) -> list[str]:
    """Registers every task variant of one dataset (module docstring); returns the task names.

    The one task factory of every collection. Records the names and templates in
    REGISTERED[dataset] under `collection`.

    eval_fields: raw fields kept on templated examples for `postprocess_fn`.
    dialog_prompt: wrap every input in FLAN's dialog markers (`with_dialog_prompt`).
    output_features: the tasks' features (None: OUTPUT_FEATURES, SentencePiece by
      VOCABULARY_PATH).

    Raises:
      ValueError: a template uses a field the dataset does not provide
        (names the task and the field).
    """
    templates = list(templates)
    templates_lib.validate_templates(dataset, templates, available_fields)
    if is_classification and "answer" not in available_fields:
        raise ValueError(
            f"{dataset}: classification data needs an 'answer' field holding the correct "
            f"option (rank classification marks that option correct); its fields are "
            f"{sorted(available_fields)}. Rename the field that holds the answer to 'answer'.")
    common = dict(postprocess_fn=postprocess_fn, metric_fns=metric_fns, eval_fields=eval_fields)
    names = []

    def add(name, chosen, **kwargs):
        names.append(name)
        add_task(name, source, field_preprocessors, chosen, dialog_prompt=dialog_prompt,
                  output_features=output_features, **kwargs)

    def add_with_shots(name, chosen, **kwargs):
        for suffix, shots in [("", 0), *SHOTS.items()]:
            add(name + suffix, chosen, shots=shots, **kwargs)

    for n in NUM_TEMPLATES_LIST:
        if n <= len(templates):
            add_with_shots(templated_task_name(dataset, n), templates[:n], **common)
            if is_classification:
                add(round_robin_scoring_task_name(dataset, n), templates[:n], scoring=True,
                    eval_fields=eval_fields)
    for i, template in enumerate(templates):
        add_with_shots(eval_task_name(dataset, i), [template], **common)
        if not is_classification:
            continue
        add_with_shots(scoring_eval_task_name(dataset, i), [template], scoring=True,
                       eval_fields=eval_fields)
        for variant in NO_OPTIONS_VARIANTS:  # FLAN's baseline and FLAN runs: same tasks
            add(f"{eval_task_name(dataset, i)}_{variant}", [without_options(template)],
                scoring=True, eval_fields=eval_fields)
    add(all_prompts_task_name(dataset), templates, **common)
    ablated = {"no_template": templates_lib.no_template(templates),
               "dataset_name": templates_lib.dataset_name(
                   templates, cluster.replace("_", " ").title(), dataset)}
    for ablation, ablated_templates in ablated.items():
        add(ablation_task_name(dataset, ablation), ablated_templates, **common)
    REGISTERED[dataset] = Registered(tuple(names), tuple(templates), collection)
    return names


def register_flan_dataset(dataset: str, templates: Sequence[Template],
                          spec: DatasetSpec | None = None,
                          dialog_prompt: bool = False) -> list[str]:
    """Registers a collection dataset (spec from datasets.DATASETS) with `templates`."""
    spec = spec or DATASETS[dataset]
    try:
        cluster = clusters_lib.cluster_of(dataset)
    except KeyError:
        cluster = "Custom"
    return register_dataset_tasks(
        dataset, templates, source=source_for(spec),
        field_preprocessors=[functools.partial(to_fields, spec=spec)],
        available_fields=spec.available_fields, is_classification=spec.is_classification,
        cluster=cluster, postprocess_fn=spec.postprocess_fn, metric_fns=spec.metric_fns,
        eval_fields=spec.eval_fields, dialog_prompt=dialog_prompt, collection=FLAN_2021)


def datasets_of_patterns(patterns: Mapping[str, Sequence[tuple[str, str]]],
                         datasets: Mapping[str, DatasetSpec] = DATASETS) -> dict[str, str]:
    """Dataset -> its PATTERNS key, for the datasets of `datasets` that `patterns` templates.

    Keys are FLAN's template-group keys (patterns.pattern_name): "mnli" templates both
    MNLI datasets, "anli" the three ANLI rounds. A dataset whose key is absent is left out.

    Raises:
      ValueError: a key that is no dataset's key (names the key and the keys known).
    """
    keys = {dataset: patterns_lib.pattern_name(dataset) for dataset in datasets}
    unknown = sorted(set(patterns) - set(keys.values()))
    if unknown:
        grouped = {k: patterns_lib.pattern_name(k) for k in unknown
                   if patterns_lib.pattern_name(k) != k}
        hint = "".join(f" {dataset!r} is templated by the group key {key!r}." for dataset, key
                       in grouped.items())
        raise ValueError(
            f"PATTERNS key(s) {unknown} template no dataset with a spec.{hint} Keys are FLAN's "
            f"template-group keys; known: {sorted(set(keys.values()))}. Rename the key, or add "
            f"a DatasetSpec for it to the datasets passed in.")
    return {dataset: key for dataset, key in keys.items() if key in patterns}


def register_from_patterns(patterns: Mapping[str, Sequence[tuple[str, str]]],
                           datasets: Mapping[str, DatasetSpec] = DATASETS,
                           dialog_prompt: bool = False) -> list[str]:
    """Registers datasets from a PATTERNS dict shaped like FLAN's (its keys and field names).

    Every dataset of `datasets` whose key (`datasets_of_patterns`) is in `patterns` gets
    that list's templates; returns the registered task names.
    """
    loaded = templates_lib.load_patterns(patterns)
    names = []
    for dataset, key in datasets_of_patterns(patterns, datasets).items():
        names += register_flan_dataset(dataset, loaded[key], datasets[dataset], dialog_prompt)
    return names


# ---------------------------------------------------------------------------
# Own instruction data from JSONL files.


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    with tf.io.gfile.GFile(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _jsonl_dataset_fn(split: str, shuffle_files: bool, seed: int | None = None, *,
                      paths: Mapping[str, str], fields: Sequence[str],
                      options: Sequence[str] | None) -> tf.data.Dataset:
    del shuffle_files, seed  # seqio shuffles examples after preprocessing
    rows = _read_jsonl(paths[split])
    per_example_options = options is None and rows and "options" in rows[0]

    def generate():
        for row in rows:
            ex = {k: str(row[k]) for k in fields}
            if options is not None or per_example_options:
                ex["options"] = [str(o) for o in (options or row["options"])]
            yield ex

    signature = {k: tf.TensorSpec([], tf.string) for k in fields}
    if options is not None or per_example_options:
        signature["options"] = tf.TensorSpec([None], tf.string)
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def register_jsonl_task(
    name: str,
    train_path: str,
    validation_path: str | None,
    templates: Sequence[Template] | Sequence[tuple[str, str]],
    *,
    test_path: str | None = None,
    options: Sequence[str] | None = None,
    metric_fns: Sequence[Callable] = (t5_metrics.accuracy,),
    postprocess_fn=None,
    cluster: str = "Custom",
) -> list[str]:
    """Registers your own instruction data as FLAN-style tasks.

    Each file holds one JSON object per line with (at least) the fields the
    templates name, e.g. {"question": "...", "answer": "..."}. Classification
    data either passes fixed `options` or gives each object an "options" list;
    the answer field must then be one of them. Registers `name_{N}templates`,
    `name_type_{i}` (and `_scoring_eval` for classification), and the two
    ablations, exactly like a collection dataset, so the tasks can join mixtures.

    Args:
      name: dataset name (task names are derived from it).
      train_path / validation_path / test_path: JSONL files (local or gs://);
        validation and test are optional.
      templates: Templates, or (input, target) pairs in FLAN's format.
      options: fixed answer choices for a classification dataset.
      metric_fns / postprocess_fn: scoring of generated targets.
      cluster: the cluster name shown by the dataset_name ablation.

    Returns:
      The registered task names.

    Raises:
      ValueError: a template uses a field missing from the first train record.
    """
    templates = [t if isinstance(t, Template) else Template(*t) for t in templates]
    first = _read_jsonl(train_path)[:1]
    if not first:
        raise ValueError(f"{name}: {train_path} holds no JSON records")
    fields = [k for k, v in first[0].items() if k != "options" and not isinstance(v, list)]
    is_classification = options is not None or "options" in first[0]
    paths = {"train": train_path, "validation": validation_path, "test": test_path}
    paths = {k: v for k, v in paths.items() if v}
    source = seqio.FunctionDataSource(
        functools.partial(_jsonl_dataset_fn, paths=paths, fields=tuple(fields),
                          options=tuple(options) if options is not None else None),
        splits=tuple(paths))
    available = fields + (["options"] if is_classification else [])
    return register_dataset_tasks(
        name, templates, source=source, available_fields=available,
        is_classification=is_classification, cluster=cluster, postprocess_fn=postprocess_fn,
        metric_fns=metric_fns)


# ---------------------------------------------------------------------------
# Mixtures.


def add_mixture(name: str, task_names: Sequence[str], capped: bool) -> None:
    """(Re-)registers a mixture of `task_names` (sorted), mixed examples-proportionally;
    `capped`: each task's rate capped at MIXING_CAP examples (FLAN's training mixtures)."""
    rate = (functools.partial(seqio.mixing_rate_num_examples, maximum=MIXING_CAP) if capped
            else seqio.mixing_rate_num_examples)
    seqio.MixtureRegistry.remove(name)
    seqio.MixtureRegistry.add(name, sorted(task_names), default_rate=rate)


def paper_eval_tasks(dataset: str) -> tuple[str, ...]:
    """`dataset` evaluated as the FLAN paper reports it: every template on the whole eval
    split, by rank classification (`d_type_{i}_scoring_eval`) for classification data, by
    generation (`d_type_{i}`) otherwise."""
    registered = REGISTERED[dataset]
    count = range(len(registered.templates))
    scoring = tuple(scoring_eval_task_name(dataset, i) for i in count)
    if scoring[0] in registered.tasks:
        return scoring
    return tuple(eval_task_name(dataset, i) for i in count)


def paper_eval_mixture_name(split_idx: int) -> str:
    return mixtures_lib.inter_cluster_split_name(split_idx, "paper") + "_eval"


def register_mixtures(templated: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Registers mixtures.mixture_members(templated), and for every held-out cluster the
    paper's evaluation of it, `flan_inter_cluster_split_{idx}_paper_eval` (ours: the
    held-out datasets of FLAN's `..._10templates_eval` through `paper_eval_tasks`, read by
    the summary one row per dataset, reporting.template_tasks); returns them all."""
    members = mixtures_lib.mixture_members(templated)
    stem = "_10templates"
    for idx in range(len(clusters_lib.CLUSTERS)):
        held_out = members.get(mixtures_lib.inter_cluster_split_name(idx, "10templates")
                               + "_eval", ())
        if held_out:
            members[paper_eval_mixture_name(idx)] = tuple(
                t for task in held_out for t in paper_eval_tasks(task.removesuffix(stem)))
    for name, task_names in members.items():
        add_mixture(name, task_names, capped=name.endswith("_train"))
    return members
