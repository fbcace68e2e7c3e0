"""seqio preprocessors that turn raw examples into instruction-formatted text.

`apply_templates` formats with pure TensorFlow string ops (no tf.py_function):
it runs inside tf.data's parallel map without the Python GIL, and it stays
deterministic because the template is chosen by example index, not at random.
"""
from __future__ import annotations

import functools
from typing import Mapping, Sequence

import tensorflow as tf
from t5.data import preprocessors as t5_preprocessors

from flan_jax import templates as templates_lib
from flan_jax.templates import Template

TEMPLATE_IDX = "template_idx"  # which template formatted the example (metadata)


def _as_string(value: tf.Tensor) -> tf.Tensor:
    if value.dtype == tf.string:
        return value
    # Integers print the same in TF and Python; floats would not ("0.5" vs
    # "0.500000"), so refuse them rather than let the two renderers disagree.
    if value.dtype.is_integer:
        return tf.strings.as_string(value)
    raise TypeError(f"template fields must be strings or integers, got {value.dtype}")


def _options_text(options: tf.Tensor) -> tf.Tensor:
    """TF twin of templates.render_options."""
    lines = tf.strings.join([templates_lib.OPTION_PREFIX, options])
    return tf.strings.join([templates_lib.OPTIONS_HEADER, tf.strings.reduce_join(lines)])


def _render(fmt: str, example: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """TF twin of Template rendering: joins literals and field values."""
    parts = []
    for literal, name in templates_lib.template_pieces(fmt):
        if literal:
            parts.append(literal)
        if name == templates_lib.OPTIONS_SLOT:
            parts.append(_options_text(example[templates_lib.OPTIONS_FIELD]))
        elif name is not None:
            parts.append(_as_string(example[name]))
    if not parts:
        return tf.constant("")
    return tf.strings.join(parts)


def _render_pair(
    template: Template, example: Mapping[str, tf.Tensor]
) -> tuple[tf.Tensor, tf.Tensor]:
    return _render(template.input, example), _render(template.target, example)


def apply_templates(
    dataset: tf.data.Dataset, templates: Sequence[Template], passthrough: Sequence[str] = ()
) -> tf.data.Dataset:
    """Formats raw examples with instruction templates, FLAN's round robin.

    Example i of the dataset (as enumerated here) uses template
    i % len(templates). When seqio shards a task, the index counts examples
    within the shard, which keeps each shard's template mix balanced.

    Args:
      dataset: raw examples, a dict of scalar string (or integer) fields, plus
        "options", a 1-D string tensor of answer choices, for classification.
      templates: the dataset's templates; bind with functools.partial in a
        Task's preprocessor list.
      passthrough: raw fields copied unchanged onto the formatted example, for a
        postprocessor that reads them (e.g. every gold answer of a QA example).

    Returns:
      Examples {"inputs", "targets", "template_idx"}, the `passthrough` fields
      and, when the raw example had it, "options" (kept for rank-classification
      evaluation).
    """
    templates = tuple(templates)
    if not templates:
        raise ValueError("apply_templates needs at least one template")

    def format_example(index, example):
        template_idx = tf.cast(index % len(templates), tf.int32)
        branches = [functools.partial(_render_pair, t, example) for t in templates]
        inputs, targets = tf.switch_case(template_idx, branches)
        formatted = {"inputs": inputs, "targets": targets, TEMPLATE_IDX: template_idx}
        if templates_lib.OPTIONS_FIELD in example:
            formatted[templates_lib.OPTIONS_FIELD] = example[templates_lib.OPTIONS_FIELD]
        formatted.update({key: example[key] for key in passthrough})
        return formatted

    return dataset.enumerate().map(
        format_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def rank_classification_expand(
    dataset: tf.data.Dataset, mode: str = "eval"
) -> tf.data.Dataset:
    """One row per answer choice, for scoring classification by likelihood.

    Input: examples from `apply_templates` that carry "options". Each becomes
    len(options) rows with the same "inputs", "targets" set to one option,
    "is_correct" (that option equals the original target) and "idx"
    [example, option] (t5's rank_classification layout, so its postprocessor
    and metric apply). Examples whose target is not one of the options
    (turned-around templates, e.g. "write a positive review") cannot be scored
    this way and are dropped.

    Args:
      dataset: formatted examples with "inputs", "targets" and "options".
      mode: "eval" (all rows), "train" (only the correct rows) or
        "fewshot_eval" (rows of one example batched together), as in t5.
    """
    options_key = templates_lib.OPTIONS_FIELD

    def target_is_an_option(ex):
        return tf.reduce_any(tf.equal(ex[options_key], ex["targets"]))

    passthrough = [TEMPLATE_IDX] if TEMPLATE_IDX in dataset.element_spec else []
    return t5_preprocessors.rank_classification(
        dataset.filter(target_is_an_option),
        inputs_fn=lambda ex: tf.fill(tf.shape(ex[options_key]), ex["inputs"]),
        targets_fn=lambda ex: ex[options_key],
        is_correct_fn=lambda ex: tf.equal(ex[options_key], ex["targets"]),
        mode=mode,
        passthrough_feature_keys=passthrough,
    )
