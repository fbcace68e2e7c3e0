"""Scoring functions of the FLAN 2021 collection that t5.evaluation does not provide.

FLAN scores most datasets with t5.evaluation.metrics and t5.data.postprocessors directly
(datasets.py names those). Two pieces are FLAN's own, written again here:

  multi_reference_rouge   structure-to-text (common_gen, dart, e2e_nlg, web_nlg_en): each
                          prediction is scored against the reference that suits it best,
                          per ROUGE type (the GEM benchmark's multi-reference protocol).
  multirc_label_and_group MultiRC's postprocessor: the yes/no answer as a class id, and on
                          targets the question it belongs to, so t5's
                          multirc_f1_over_all_answers and grouped exact match apply.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from t5.data import postprocessors as t5_post
from t5.evaluation import metrics as t5_metrics

ROUGE_TYPES = ("rouge1", "rouge2", "rougeLsum")
MULTIRC_LABELS = ("no", "yes")


def multi_reference_rouge(targets: Sequence[Sequence[str]],
                          predictions: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/Lsum where every prediction meets its best-matching reference.

    For each ROUGE type separately, each example's reference with the highest score
    against its prediction is chosen (the first on ties); the corpus score is then t5's
    rouge over those chosen references, so the number is comparable to single-reference
    t5.evaluation.metrics.rouge.

    Args:
      targets: per example, its list of references ([num_examples][num_refs]).
      predictions: per example, the generated text ([num_examples]).
    """
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} reference lists for {len(predictions)} predictions")
    chosen: dict[str, list[str]] = {rouge_type: [] for rouge_type in ROUGE_TYPES}
    for references, prediction in zip(targets, predictions):
        references = list(references)
        if not references:
            raise ValueError(f"an example has no reference for prediction {prediction!r}")
        scores = [t5_metrics.rouge([reference], [prediction]) for reference in references]
        for rouge_type in ROUGE_TYPES:
            best = max(range(len(references)), key=lambda i: scores[i][rouge_type])
            chosen[rouge_type].append(references[best])
    return {rouge_type: t5_metrics.rouge(chosen[rouge_type], list(predictions))[rouge_type]
            for rouge_type in ROUGE_TYPES}


def multirc_label_and_group(output: Any, example: Mapping[str, Any] | None = None,
                            is_target: bool = False) -> dict[str, Any]:
    """'no'/'yes' -> {"value": 0/1 (-1 for anything else)}; targets add "group".

    The group is the example's question id ("idx/question"), so answers to one question
    are judged together by t5.evaluation.metrics.mean_group_metric(all_match).
    """
    result = {"value": t5_post.string_label_to_class_id(
        output, example=example, label_classes=MULTIRC_LABELS)}
    if is_target and example is not None and "idx/question" in example:
        result["group"] = example["idx/question"]
    return result


def target_as_only_answer(output: Any, example: Any = None, is_target: bool = False):
    """Targets become a one-answer list, as squad / trivia_qa metrics expect."""
    del example
    return [output] if is_target else output
