"""FLAN's `continuations_*` baselines: plain continuation prompts, no instructions.

FLAN 2021 (flan/baseline_templates.py, registered at the end of flan/tasks.py) evaluates
the untuned language model the way GPT-3 was evaluated: the input is the bare text, or a
"question / answer" frame, and the model continues it. For 23 of its template groups it
registers, per dataset, one task per baseline prompt:

  continuations_{d}_type_{i}_scoring_eval   classification: rank classification over the
                                            options ("glm" options where the dataset has
                                            them: rte "true"/"false", ...)
  continuations_{d}_type_{i}                generation: the dataset's own metrics; the
                                            prediction is cut at the start of the next
                                            prompt (few-shot runs go on to write one)

and their `_one_shot`, `_two_shot`, `_three_shot`, `_five_shot`, `_ten_shot` variants
(FLAN registers no `_multi_shot` here, and prunes no exemplars). No dialog wrapper: these
prompts are FLAN's baseline for a model without instruction tuning.

The prompts below have FLAN's structure (its fields, input and target per group, two
prompts for translation, one elsewhere) in our own wording; a prompt that is only a field
("{context}") has no wording to change. The stop markers of the postprocessor are the
openings of our prompts, as FLAN's are of its own.

Fields FLAN adds for these prompts only ("glm" fields), made here from each example:
  glm_options / glm_answer  the options and answer as a continuation reads them, aligned
                            by position with the dataset's options (FLAN builds both from the
                            same label one-hot, so CB's "true" / "neither" / "false" pair
                            with "Yes" / "No" / "It's impossible to say": FLAN's order,
                            reproduced; fix_flan_quirks pairs "No" with "false");
  glm_premise               COPA's premise with its final character replaced by " because"
                            (question "cause") or " so" (question "effect").
"""
from __future__ import annotations

import functools
from typing import Any, Mapping

import tensorflow as tf

from flan_jax import templates as templates_lib
from tasks.flan import patterns as patterns_lib
from tasks.flan import registration
from tasks.flan.datasets import DATASETS, DatasetSpec

# FLAN's ShotConfig without ZERO and MULTI: the few-shot variants of every continuation task.
CONTINUATION_SHOTS: dict[str, int] = {"_one_shot": 1, "_two_shot": 2, "_three_shot": 3,
                                      "_five_shot": 5, "_ten_shot": 10}

# FLAN's few-shot layout for continuations (register_few_shot_versions_of_continuations_task):
# input and target joined by a space, exemplars separated by a blank line, no prefixes and
# no final suffix.
CONTINUATION_X_Y_DELIMITER = " "
CONTINUATION_EXAMPLE_SEPARATOR = "\n\n"

# pylint: disable=line-too-long
PATTERNS: dict[str, list[tuple[str, str]]] = {
    "anli": [("{context}\nStatement: {hypothesis} True, false, or neither?\nVerdict:", "{glm_answer}")],
    "cb": [("{premise}\nStatement: {hypothesis} True, false, or neither?\nVerdict:", "{glm_answer}")],
    "rte": [("{premise}\nStatement: {hypothesis} True or false?\nVerdict:", "{glm_answer}")],
    "arc": [("Exam question: {question}\nCorrect answer:", "{answer}")],
    "bool_q": [("{text}\nYes or no: {question}?\nReply:", "{answer}")],
    "openbookqa": [("Known: {fact}\n{question}", "{answer}")],
    "copa": [("{glm_premise}", "{answer}")],
    "hellaswag": [("{context}", "{answer}")],
    "piqa": [("{goal}", "{answer}")],
    "story_cloze": [("{context}", "{answer}")],
    "record": [("{passage} {query}", "{answer}")],
    "multirc": [("Reading test, answers marked\n{paragraph}\n\n{question}", "[{glm_answer}] {response}")],
    "winogrande": [("{context}", "{answer}")],
    "common_gen": [("Keywords: {concepts}\n\nOne sentence with all of them:", "{target}")],
    "dart": [("Facts: ({tripleset})\n\nThe same in words:", "{target}")],
    "e2e_nlg": [("Facts: ({meaning_representation})\n\nThe same in words:", "{target}")],
    "web_nlg_en": [("Facts: ({input_string})\n\nThe same in words:", "{target}")],
    **{group: [("Question: How do you say {sent1} in {lang2}?\nAnswer:", "{sent2}"),
               ("Question: How do you say {sent2} in {lang1}?\nAnswer:", "{sent1}")]
       for group in ("para_crawl", "wmt14_enfr", "wmt16_translate")},
    "natural_questions": [("Question: {question}\nAnswer:", "{answer}")],
    "trivia_qa": [("Question: {question}\nAnswer:", "{answer}")],
    "wsc273": [("{context}", "{answer}")],
}
# pylint: enable=line-too-long

# Where a generated continuation ends: the opening of the next prompt (FLAN cuts at its own
# prompts' openings, "Q:", "Concepts:" and "Data:").
STOP_MARKERS = ("Question:", "Keywords:", "Facts:")

# FLAN's glm options per template group, in the order of the dataset's options (both come
# from the same label one-hot in FLAN's preprocessors).
GLM_OPTIONS: dict[str, tuple[str, ...]] = {
    "rte": ("true", "false"),
    "anli": ("true", "neither", "false"),
    "cb": ("true", "neither", "false"),
    "multirc": ("False", "True"),
}
# The fix of CB's order (fix_flan_quirks): TFDS labels CB entailment, contradiction, neutral.
GLM_OPTIONS_FIXED: dict[str, tuple[str, ...]] = {**GLM_OPTIONS, "cb": ("true", "false", "neither")}

GLM_FIELDS = ("glm_options", "glm_answer", "glm_premise")


def task_name(dataset: str, template_idx: int, is_classification: bool) -> str:
    """FLAN's name: continuations_{d}_type_{i}, with _scoring_eval for classification."""
    name = f"continuations_{dataset}_type_{template_idx}"
    return name + "_scoring_eval" if is_classification else name


def add_glm_fields(dataset: tf.data.Dataset, group: str, fix_flan_quirks: bool = False
                   ) -> tf.data.Dataset:
    """Adds FLAN's glm fields of `group` to templated-field examples (see module doc)."""
    glm_options = (GLM_OPTIONS_FIXED if fix_flan_quirks else GLM_OPTIONS).get(group)

    def add(ex):
        ex = dict(ex)
        if glm_options is not None:
            options = tf.constant(glm_options)
            position = tf.argmax(tf.cast(tf.equal(ex[templates_lib.OPTIONS_FIELD],
                                                  ex["answer"]), tf.int32))
            ex["glm_options"], ex["glm_answer"] = options, tf.gather(options, position)
        if group == "copa":
            connector = tf.strings.regex_replace(ex["question"], "cause", " because")
            connector = tf.strings.regex_replace(connector, "effect", " so")
            ex["glm_premise"] = tf.strings.regex_replace(ex["premise"], r".$", connector)
        return ex

    return dataset.map(add, num_parallel_calls=tf.data.AUTOTUNE)


def use_glm_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Rank classification over the glm options, correct at the glm answer (FLAN's
    GLM_RANK_CLASSIFICATION): the scoring step reads them as "options" / "answer"."""
    def swap(ex):
        ex = dict(ex)
        ex[templates_lib.OPTIONS_FIELD], ex["answer"] = ex["glm_options"], ex["glm_answer"]
        return ex
    return dataset.map(swap, num_parallel_calls=tf.data.AUTOTUNE)


def strip_leading_non_letters(text: str, fix_flan_quirks: bool = False) -> str:
    """FLAN's remove_leading_quotes_and_spaces: drops every leading character that is not a
    letter, digits included ("42 apples" -> "apples"). With fix_flan_quirks, only leading
    whitespace and quotes go."""
    if fix_flan_quirks:
        return text.lstrip(" \t\n\"'`")
    position = 0
    while position < len(text) and not text[position].isalpha():
        position += 1
    return text[position:]


def continuation_answer(answer: Any, example: Mapping[str, Any] | None = None,
                        is_target: bool = False, fix_flan_quirks: bool = False) -> Any:
    """FLAN's parse_glm_qa_answer: a target is every gold answer where the example has them;
    a prediction is cut at the first STOP_MARKER and stripped of leading non-letters."""
    if is_target:
        if example is not None and "answers" in example:
            return [tf.compat.as_text(a) for a in example["answers"]]
        return answer
    text = tf.compat.as_text(answer)
    for marker in STOP_MARKERS:
        text = text.split(marker)[0]
    return strip_leading_non_letters(text, fix_flan_quirks)


def register(specs: Mapping[str, DatasetSpec] = DATASETS, fix_flan_quirks: bool = False
             ) -> list[str]:
    """Registers the continuation tasks (and few-shot variants) of every dataset in `specs`
    whose template group has continuation prompts; returns the task names."""
    loaded = templates_lib.load_patterns(PATTERNS)
    names = []
    for dataset, spec in specs.items():
        group = patterns_lib.pattern_name(dataset)
        if group not in loaded:
            continue
        available = set(spec.available_fields) | set(GLM_FIELDS)
        templates_lib.validate_templates(f"continuations_{dataset}", loaded[group], available)
        field_preprocessors = [functools.partial(registration.to_fields, spec=spec),
                               functools.partial(add_glm_fields, group=group,
                                                 fix_flan_quirks=fix_flan_quirks)]
        if spec.is_classification and group in GLM_OPTIONS:
            field_preprocessors.append(use_glm_options)
        for i, template in enumerate(loaded[group]):
            name = task_name(dataset, i, spec.is_classification)
            postprocess = functools.partial(continuation_answer,
                                            fix_flan_quirks=fix_flan_quirks)
            for suffix, shots in [("", 0), *CONTINUATION_SHOTS.items()]:
                registration.add_task(
                    name + suffix, registration.source_for(spec), field_preprocessors,
                    [template], scoring=spec.is_classification, shots=shots,
                    fewshot_step=registration.CONTINUATIONS_FEWSHOT_STEP,
                    postprocess_fn=None if spec.is_classification else postprocess,
                    metric_fns=spec.metric_fns, eval_fields=spec.eval_fields)
                names.append(name + suffix)
    return names

