"""The FLAN 2021 collection as data: one DatasetSpec per dataset.

Each spec says where the examples come from (TFDS name:version and how its
splits become our train / validation / test), how a raw TFDS example becomes
the flat string fields the templates read (`fields`, plus "options" for
classification), and how predictions are scored (t5.evaluation.metrics).

Everything that changes a reported number follows FLAN's code (flan/tasks.py of
the 2021 release, commit 3770e83); tests/test_flan_fidelity.py checks each fact
against tests/data/flan/flan_2021_reference.json.gz, which tools/flan_reference.py
reads out of FLAN's own code:

  * splits: FLAN's split strings verbatim. The training subset is FLAN's fixed
    slice "train[:30000]" (the same 30,000 examples every epoch and on every
    host); datasets without a labelled test split carve a 200-example
    validation split from the end of train (50 for CB/COPA/WSC, 30 for WNLI,
    100 for PIQA/STS-B/CoQA) and report on the official validation split;
  * filters and field mappings as FLAN's (e.g. ARC keeps 4-choice questions
    only; sentiment140 keeps its neutral test tweets, which become "negative");
  * metrics and postprocessors as FLAN's: QA scored against every gold answer
    ("answers"), structure-to-text with multi-reference ROUGE, MultiRC by F1
    over all answers plus per-question exact match.

Versions: FLAN's later pin (its 2022-23 fixes for sources that stopped
building: glue 2.0.0, gem 1.1.0, paws_wiki 1.1.0, hellaswag 1.1.0) where it
has one; where neither FLAN pin builds with tensorflow-datasets 4.9.10 the
version that does (cnn_dailymail 3.4.0, multi_news 2.1.0, winogrande 1.2.0).
xsum keeps FLAN 2021's xsum:1.0.0 (still built by TFDS); FLAN's later
"huggingface:xsum" reads Hugging Face's copy through TFDS's community loader
(it needs the `datasets` package). VERSION_CHOICES lists the others.

Quirks: where FLAN's scoring is evidently broken we reproduce it by default
and offer the fix (`FLAN_QUIRKS`, applied by `specs(fix_flan_quirks=True)`).

Nothing here touches TFDS: the specs are plain data and TF functions that run
only when a task's dataset is read.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import tensorflow as tf
from t5.data import postprocessors as t5_post
from t5.evaluation import metrics as t5_metrics

from flan_jax import templates as templates_lib
from tasks.flan import metrics as flan_metrics

MAX_TRAIN_EXAMPLES = 30_000
DEV_SIZE = 200

Example = Mapping[str, tf.Tensor]


def _dev_from_train(test: str = "validation", dev: int = DEV_SIZE, capped: bool = True,
                    train: str = "train") -> dict[str, str]:
    """Validation = the last `dev` train examples; FLAN reports on the official `test` split.

    capped: train is FLAN's fixed first MAX_TRAIN_EXAMPLES (every such dataset holds more
    than MAX_TRAIN_EXAMPLES + dev, so the two never overlap); else all but the last `dev`.
    """
    first = f"{train}[:{MAX_TRAIN_EXAMPLES}]" if capped else f"{train}[:-{dev}]"
    return {"train": first, "validation": f"{train}[-{dev}:]", "test": test}


def _official(capped: bool = True, validation: str = f"validation[:{DEV_SIZE}]"):
    """The dataset's own labelled splits; validation trimmed to DEV_SIZE examples."""
    train = f"train[:{MAX_TRAIN_EXAMPLES}]" if capped else "train"
    return {"train": train, "validation": validation, "test": "test"}


# para_crawl/en-da is one long train split that three text-formatting datasets
# share: consecutive disjoint slices for train/validation, a common tail for test.
def _paracrawl_slices(slot: int):
    start = slot * (MAX_TRAIN_EXAMPLES + DEV_SIZE)
    mid, end = start + MAX_TRAIN_EXAMPLES, start + MAX_TRAIN_EXAMPLES + DEV_SIZE
    return {"train": f"train[{start or ''}:{mid}]", "validation": f"train[{mid}:{end}]",
            "test": "train[-3000:]"}


def _label_id(options: tuple[str, ...]):
    return functools.partial(t5_post.string_label_to_class_id, label_classes=list(options))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the collection.

    Attributes:
      tfds_name: "name/config:version".
      splits: our split name -> TFDS split string (slices allowed).
      fields: the string fields `to_fields` returns (besides "options") for templates.
      to_fields: raw TFDS example -> {field: scalar string, "options": [k] strings,
        and the `eval_fields`}.
      options: the fixed answer choices of a classification dataset; None for
        generation; () when each example brings its own choices (e.g. COPA).
      keep: optional predicate on the raw example (drops unlabelled rows etc.).
      metric_fns / postprocess_fn: scoring of generated targets.
      eval_fields: fields no template reads that ride along on the templated example for
        the postprocessor, e.g. "answers" ([k] strings: every gold answer) or
        "idx/question" (MultiRC's grouping id).
    """

    tfds_name: str
    splits: Mapping[str, str]
    fields: tuple[str, ...]
    to_fields: Callable[[Example], dict[str, tf.Tensor]]
    options: tuple[str, ...] | None = None
    keep: Callable[[Example], tf.Tensor] | None = None
    metric_fns: tuple[Callable[..., Mapping[str, float]], ...] = (t5_metrics.accuracy,)
    postprocess_fn: Callable[..., Any] | None = None
    eval_fields: tuple[str, ...] = ()

    @property
    def is_classification(self) -> bool:
        return self.options is not None

    @property
    def available_fields(self) -> tuple[str, ...]:
        return self.fields + (("options",) if self.is_classification else ())


# ---------------------------------------------------------------------------
# Small TF helpers for the field mappings.


def _pick(options, label) -> tf.Tensor:
    return tf.gather(tf.convert_to_tensor(options), tf.cast(label, tf.int32))


def _classify(options: tuple[str, ...], label_key: str = "label", **renames: str):
    """Mapping for fixed-option classification: renames fields, answer = options[label]."""
    def fn(ex):
        out = {new: ex[old] for new, old in renames.items()}
        out["options"] = tf.constant(options)
        out["answer"] = _pick(options, ex[label_key])
        return out
    return fn


def _choices(label_key: str = "label", choice_keys: tuple[str, ...] = (), **renames: str):
    """Mapping for per-example choices stacked from `choice_keys`."""
    def fn(ex):
        out = {new: ex[old] for new, old in renames.items()}
        out["options"] = tf.stack([ex[k] for k in choice_keys])
        out["answer"] = _pick(out["options"], ex[label_key])
        return out
    return fn


def _rename(**renames: str):
    return lambda ex: {new: ex[old] for new, old in renames.items()}


def _numbered(items: tf.Tensor, limit: int = 10) -> tf.Tensor:
    """["a", "b"] -> "1. a\\n2. b" (at most `limit` items)."""
    items = items[:limit]
    numbers = tf.strings.as_string(tf.range(1, tf.shape(items)[0] + 1))
    return tf.strings.reduce_join(tf.strings.join([numbers, items], ". "), separator="\n")


def _options_text(options: tf.Tensor) -> tf.Tensor:
    """[k] strings -> "OPTIONS:\\n- a\\n- b", the text templates_lib.render_options gives."""
    return tf.strings.join([templates_lib.OPTIONS_HEADER, tf.strings.reduce_join(
        templates_lib.OPTION_PREFIX + options)])


def _first(values: tf.Tensor) -> tf.Tensor:
    """First entry of a possibly empty string vector ("" when empty)."""
    return tf.concat([values, [""]], axis=0)[0]


def _with_target(references: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """GEM's extra references plus the training target: every reference FLAN scores against."""
    return tf.concat([references, [target]], axis=0)


# ---------------------------------------------------------------------------
# Per-dataset mappings that do more than rename.

_YES_NO = ("yes", "no")
_NO_YES = ("no", "yes")
_POLARITY = ("negative", "positive")
_NLI3 = ("yes", "it is not possible to tell", "no")
_ANLI = ("Yes", "It's impossible to say", "No")
_CB = ("Yes", "No", "It's impossible to say")
_TREC = ("description", "entity", "abbreviation", "human", "numeric", "location")
_AG_NEWS = ("World", "Sports", "Business", "Science/Tech")
_STSB = ("0", "1", "2", "3", "4", "5")
_UNANSWERABLE = "unanswerable"


def _squad_v1(ex):
    answers = ex["answers"]["text"]
    return {"title": tf.strings.regex_replace(ex["title"], "_", " "),
            "context": ex["context"], "question": ex["question"],
            "answer": _first(answers), "answers": answers}


def _squad_v2(ex):
    out = _squad_v1(ex)
    out["answer"] = tf.where(ex["is_impossible"], _UNANSWERABLE, out["answer"])
    # One branch per case so both have the same shape ([k] strings).
    out["answers"] = tf.cond(ex["is_impossible"], lambda: tf.constant([_UNANSWERABLE]),
                             lambda: out["answers"])
    return out


def _drop(ex):
    return {"context": ex["passage"], "question": ex["question"], "answer": ex["answer"],
            "answers": tf.reshape(ex["answer"], [1])}


def _record(ex):
    left_right = tf.strings.split(ex["query"], "@placeholder", maxsplit=1)
    left_right = tf.concat([left_right, ["", ""]], 0)
    right = left_right[1]
    options = ex["entities"] + right
    answers = ex["answers"] + right
    return {"passage": tf.strings.split(ex["passage"], "\n@highlight", maxsplit=1)[0],
            "query": tf.strings.strip(left_right[0]),
            # FLAN's ReCoRD templates read the choices as one string (a variable number
            # of entities), laid out as {options_} renders them.
            "options_str": _options_text(options),
            "options": options, "answer": _first(answers), "answers": answers}


def _arc(ex):
    options = ex["choices"]["text"]
    return {"question": ex["question"], "options": options,
            "answer": _pick(options, ex["answerKey"])}


def _winogrande(ex):
    # FLAN's: the text before the first "_" is the context (unstripped), the text between
    # the first and a second "_" ends each option.
    parts = tf.concat([tf.strings.split(ex["sentence"], "_"), ["", ""]], 0)
    options = tf.stack([ex["option1"] + parts[1], ex["option2"] + parts[1]])
    return {"context": parts[0], "options": options, "answer": _pick(options, ex["label"])}


def _wsc273(ex):
    # FLAN's: the text before the pronoun is the context; each option is a candidate
    # referent followed by the rest of the sentence after the pronoun.
    prefix = tf.strings.strip(tf.strings.substr(ex["text"], 0, ex["pronoun_start"]))
    suffix = tf.strings.strip(tf.strings.substr(ex["text"], ex["pronoun_end"], -1))
    options = tf.stack([ex["option1_normalized"], ex["option2_normalized"]]) + " " + suffix
    return {"context": prefix, "options": options, "answer": _pick(options, ex["label"])}


def _story_cloze(ex):
    options = ex["endings"]
    return {"context": ex["context"], "options": options,
            "answer": _pick(options, ex["label"] - 1)}


def _hellaswag(ex):
    context = tf.strings.regex_replace(ex["context"], r"\[header\]\s", "")
    context = tf.strings.regex_replace(context, r"\[.*?\]\s", "\n")
    options = tf.strings.regex_replace(ex["endings"], r"\[.*?\]\s", "")
    return {"context": context, "activity_label": ex["activity_label"], "options": options,
            "answer": _pick(options, ex["label"])}


def _openbookqa(ex):
    q = ex["question"]
    options = tf.stack([q["choice_A"], q["choice_B"], q["choice_C"], q["choice_D"]])
    return {"question": q["stem"], "fact": ex["fact1"], "options": options,
            "answer": _pick(options, ex["answerKey"])}


def _copa(ex):
    options = tf.stack([ex["choice1"], ex["choice2"]])
    return {"premise": ex["premise"], "question": ex["question"],
            "options": options, "answer": _pick(options, ex["label"])}


def _stsb(ex):
    score = tf.strings.as_string(tf.round(ex["label"]), precision=0)
    # FLAN's templates read the score text as "answer_str" (its "answer" is the float);
    # ours is text in both, as rank classification marks the option equal to "answer".
    return {"sentence1": ex["sentence1"], "sentence2": ex["sentence2"],
            "options": tf.constant(_STSB), "answer_str": score, "answer": score}


def _sentiment140(ex):
    # Polarity 0 negative, 2 neutral, 4 positive. FLAN keeps every tweet: the neutral
    # ones (test split only) count as negative; 3 and 4 are positive.
    positive = tf.logical_or(tf.equal(ex["polarity"], 3), tf.equal(ex["polarity"], 4))
    return {"text": ex["text"], "options": tf.constant(_POLARITY),
            "answer": tf.where(positive, _POLARITY[1], _POLARITY[0])}


def _imdb(ex):
    out = _classify(_POLARITY, text="text")(ex)
    out["text"] = tf.strings.regex_replace(ex["text"], "<br />", "\n")
    return out


def _yelp(ex):
    out = _classify(_POLARITY, text="text")(ex)
    out["text"] = tf.strings.regex_replace(tf.strings.regex_replace(ex["text"], r'\\""', '"'),
                                           r"\\n", " ")
    return out


def _qqp(ex):
    out = _classify(_NO_YES, question1="question1", question2="question2")(ex)
    for key in ("question1", "question2"):  # TFDS keeps CSV-doubled quotes
        out[key] = tf.strings.regex_replace(ex[key], '""', "'")
    return out


def _trivia_qa(ex):
    return {"question": ex["question"], "answer": ex["answer"]["normalized_value"],
            "answers": ex["answer"]["normalized_aliases"]}


def _natural_questions(ex):
    return {"question": ex["question"] + "?", "answer": _first(ex["answer"]),
            "answers": ex["answer"]}


def _multirc(ex):
    out = _classify(_NO_YES, paragraph="paragraph", question="question", response="answer")(ex)
    out["idx/question"] = ex["idx"]["question"]
    return out


def _cnn_dailymail(ex):
    article = ex["article"]
    for sep in ("2013 . ", "2014 . ", "2012 . ", ") -- "):  # strip bylines and datelines
        article = tf.strings.split(article, sep)[-1]
    return {"text": article, "highlights": ex["highlights"]}


def _aeslc(ex):
    return {"body": tf.strings.regex_replace(ex["email_body"], "\n", " "),
            "subject": tf.strings.regex_replace(ex["subject_line"], "\n", "")}


def _samsum(ex):
    dialogue = tf.strings.regex_replace(ex["dialogue"], "\r\n", "\n")
    # Greedy, as FLAN's: from the first "<" to the last ">" of a line (file attachments
    # such as "<file_photo>"); a line with two tags loses the words between them too.
    return {"dialogue": tf.strings.regex_replace(dialogue, "<.*>", " "),
            "summary": ex["summary"]}


def _rotten_tomatoes(ex):
    reviews = ex["_critics"]["value"]
    return {"critic_consensus": ex["_critic_consensus"],
            "movie": tf.strings.regex_replace(ex["_movie_name"], "_", " "),
            "first_review": _first(reviews), "numbered_reviews": _numbered(reviews)}


def _idebate(ex):
    return {"claim": ex["_claim"], "debate_name": ex["_debate_name"],
            "argument_sentences": _numbered(ex["_argument_sentences"]["value"])}


def _coqa(ex):
    return {"text": ex["story"], "numbered_questions": _numbered(ex["questions"], 1000),
            "numbered_answers": _numbered(ex["answers"]["input_text"], 1000)}


def _quac(ex):
    return {"title": ex["title"], "background": ex["background"], "context": ex["context"],
            "question": ex["question"], "answer": ex["orig_answer"]["text"]}


def _common_gen(ex):
    return {"concepts": tf.strings.reduce_join(ex["concepts"], separator=", "),
            "concepts_newline": tf.strings.reduce_join(ex["concepts"], separator="\n"),
            "target": ex["target"], "answers": _with_target(ex["references"], ex["target"])}


def _dart(ex):
    # Every cell of every triple joined by "; " (FLAN's), then table markers such as
    # "[TABLECONTEXT]" and "[TITLE]" removed; the one-cell-per-line form (targets of
    # turned-around templates) keeps them, as FLAN's does.
    triples = tf.strings.reduce_join(ex["tripleset"], separator="; ")
    return {"tripleset": tf.strings.regex_replace(triples, r"\[(.*?)\]", ""),
            "tripleset_newline": tf.strings.reduce_join(ex["tripleset"], separator="\n"),
            "target": ex["target"], "answers": _with_target(ex["references"], ex["target"])}


def _e2e_nlg(ex):
    mr = tf.strings.regex_replace(ex["meaning_representation"], r"\[", " = ")
    return {"meaning_representation": tf.strings.regex_replace(mr, r"\]", ""),
            "target": ex["target"],
            "answers": _with_target(ex["references"], ex["target"])}


def _web_nlg(ex):
    triples = tf.strings.reduce_join(ex["input"], separator="; ")
    triples = tf.strings.regex_replace(tf.strings.regex_replace(triples, "_", " "),
                                       r" \| ", ", ")
    return {"input_string": triples, "target": ex["target"],
            "answers": _with_target(ex["references"], ex["target"])}


def _true_case(ex):
    return {"lower": tf.strings.lower(ex["en"]), "answer": ex["en"]}


def _fix_punct(ex):
    return {"no_punct": tf.strings.regex_replace(ex["en"], r"[^\w\s]", ""), "answer": ex["en"]}


def _word_segment(ex):
    return {"no_space": tf.strings.regex_replace(ex["en"], " ", ""), "answer": ex["en"]}


def _translation(source_lang: str, source_key: str, target_lang: str = "English",
                 target_key: str = "en"):
    """Translation examples: FLAN trains both directions through its templates."""
    def fn(ex):
        return {"lang1": tf.constant(target_lang), "lang2": tf.constant(source_lang),
                "sent1": ex[target_key], "sent2": ex[source_key]}
    return fn


# ---------------------------------------------------------------------------
# Metric bundles.

_ROUGE = dict(metric_fns=(t5_metrics.rouge,))
_BLEU = dict(metric_fns=(t5_metrics.bleu,))
_EDIT = dict(metric_fns=(t5_metrics.edit_distance,))
# Every gold answer counts: t5_post.qa hands the metric the example's "answers".
_SQUAD = dict(metric_fns=(t5_metrics.squad,), postprocess_fn=t5_post.qa, eval_fields=("answers",))
_TRIVIA = dict(metric_fns=(t5_metrics.trivia_qa,), postprocess_fn=t5_post.qa,
               eval_fields=("answers",))
_MULTI_ROUGE = dict(metric_fns=(flan_metrics.multi_reference_rouge,), postprocess_fn=t5_post.qa,
                    eval_fields=("answers",))
_TRANSLATION_FIELDS = ("lang1", "lang2", "sent1", "sent2")
_WMT16 = {"de": "German", "tr": "Turkish", "cs": "Czech", "fi": "Finnish",
          "ro": "Romanian", "ru": "Russian"}


def _four_choices(ex):
    return tf.equal(tf.size(ex["choices"]["text"]), 4)  # FLAN drops 3- and 5-choice questions


def _label_in(endings_key: str, offset: int = 0):
    def keep(ex):
        label = tf.cast(ex["label"], tf.int32) - offset
        return tf.logical_and(label >= 0, label < tf.size(ex[endings_key]))
    return keep


def _gigaword_clean(ex):
    # FLAN's filter: document and summary joined without a separator; RE2's "." stops at
    # newlines, so only single-line text with "UNK" or "#" is dropped.
    text = ex["document"] + ex["summary"]
    return tf.logical_not(tf.logical_or(tf.strings.regex_full_match(text, ".*UNK.*"),
                                        tf.strings.regex_full_match(text, ".*#.*")))


def _has_label(ex):
    return ex["label"] >= 0


DATASETS: dict[str, DatasetSpec] = {
    # --- summarization -------------------------------------------------------
    "aeslc": DatasetSpec(
        "aeslc:1.0.0", _official(capped=False, validation=f"validation[-{DEV_SIZE}:]"),
        ("body", "subject"), _aeslc,
        keep=lambda ex: tf.strings.length(ex["email_body"] + ex["subject_line"]) > 0, **_ROUGE),
    "cnn_dailymail": DatasetSpec(
        "cnn_dailymail:3.4.0", _official(), ("text", "highlights"), _cnn_dailymail, **_ROUGE),
    "gigaword": DatasetSpec(
        "gigaword:1.2.0", _official(), ("text", "summary"), _rename(text="document",
                                                                    summary="summary"),
        keep=_gigaword_clean, **_ROUGE),
    "multi_news": DatasetSpec(
        "multi_news:2.1.0", _official(), ("text", "summary"),
        _rename(text="document", summary="summary"), **_ROUGE),
    "newsroom": DatasetSpec(
        "newsroom:1.0.0", _official(), ("text", "title", "summary"),
        _rename(text="text", title="title", summary="summary"), **_ROUGE),
    "samsum": DatasetSpec("samsum:1.0.0", _official(capped=False), ("dialogue", "summary"),
                          _samsum, **_ROUGE),
    "xsum": DatasetSpec("xsum:1.0.0", _official(), ("text", "summary"),
                        _rename(text="document", summary="summary"), **_ROUGE),
    "ag_news_subset": DatasetSpec(
        "ag_news_subset:1.0.0", _dev_from_train(test="test"), ("title", "text", "answer"),
        _classify(_AG_NEWS, title="title", text="description"), options=_AG_NEWS),
    "opinion_abstracts_rotten_tomatoes": DatasetSpec(
        "opinion_abstracts/rotten_tomatoes:1.0.0",
        {"train": "train[:-600]", "validation": "train[-600:-500]", "test": "train[-500:]"},
        ("critic_consensus", "movie", "first_review", "numbered_reviews"), _rotten_tomatoes,
        **_ROUGE),
    "opinion_abstracts_idebate": DatasetSpec(
        "opinion_abstracts/idebate:1.0.0",
        {"train": "train[:-600]", "validation": "train[-600:-500]", "test": "train[-500:]"},
        ("claim", "debate_name", "argument_sentences"), _idebate, **_ROUGE),
    "wiki_lingua_english_en": DatasetSpec(
        "gem/wiki_lingua_english_en:1.1.0", _official(), ("source", "target"),
        _rename(source="source", target="target"), **_ROUGE),
    # --- structure to text ----------------------------------------------------
    "web_nlg_en": DatasetSpec("gem/web_nlg_en:1.1.0", _dev_from_train(),
                              ("input_string", "target"), _web_nlg, **_MULTI_ROUGE),
    "common_gen": DatasetSpec("gem/common_gen:1.1.0", _dev_from_train(),
                              ("concepts", "concepts_newline", "target"), _common_gen,
                              **_MULTI_ROUGE),
    "e2e_nlg": DatasetSpec("gem/e2e_nlg:1.1.0", _dev_from_train(),
                           ("meaning_representation", "target"), _e2e_nlg, **_MULTI_ROUGE),
    "dart": DatasetSpec("gem/dart:1.1.0", _dev_from_train(),
                        ("tripleset", "tripleset_newline", "target"), _dart, **_MULTI_ROUGE),
    # --- reading comprehension --------------------------------------------------
    "squad_v1": DatasetSpec("squad/v1.1:3.0.0", _dev_from_train(),
                            ("title", "context", "question", "answer"), _squad_v1, **_SQUAD),
    "squad_v2": DatasetSpec("squad/v2.0:3.0.0", _dev_from_train(),
                            ("title", "context", "question", "answer"), _squad_v2, **_SQUAD),
    "drop": DatasetSpec("drop:2.0.0", _dev_from_train(test="dev"),
                        ("context", "question", "answer"), _drop, **_SQUAD),
    "multirc": DatasetSpec(
        "super_glue/multirc:1.0.2", _dev_from_train(capped=False),
        ("paragraph", "question", "response", "answer"), _multirc, options=_NO_YES,
        metric_fns=(t5_metrics.multirc_f1_over_all_answers,
                    t5_metrics.mean_group_metric(t5_metrics.all_match)),
        postprocess_fn=flan_metrics.multirc_label_and_group, eval_fields=("idx/question",)),
    "openbookqa": DatasetSpec("openbookqa:0.1.0", _official(capped=False),
                              ("question", "fact", "answer"), _openbookqa, options=()),
    "bool_q": DatasetSpec(
        "bool_q:1.0.0", _dev_from_train(capped=False), ("title", "text", "question", "answer"),
        lambda ex: {"title": ex["title"], "text": ex["passage"], "question": ex["question"],
                    "options": tf.constant(_NO_YES),
                    "answer": _pick(_NO_YES, tf.cast(ex["answer"], tf.int32))},
        options=_NO_YES),
    # --- open-domain (closed-book) QA ------------------------------------------------
    "trivia_qa": DatasetSpec("trivia_qa/rc:1.1.0", _dev_from_train(), ("question", "answer"),
                             _trivia_qa, **_TRIVIA),
    "natural_questions": DatasetSpec("natural_questions_open:1.0.0", _dev_from_train(),
                                     ("question", "answer"), _natural_questions, **_TRIVIA),
    "arc_challenge": DatasetSpec(
        "ai2_arc/ARC-Challenge:1.0.0", _dev_from_train(test="test", capped=False),
        ("question", "answer"), _arc, options=(), keep=_four_choices),
    "arc_easy": DatasetSpec(
        "ai2_arc/ARC-Easy:1.0.0", _dev_from_train(test="test", capped=False),
        ("question", "answer"), _arc, options=(), keep=_four_choices),
    # --- paraphrase ------------------------------------------------------------------
    "glue_mrpc": DatasetSpec(
        "glue/mrpc:2.0.0", _dev_from_train(capped=False), ("sentence1", "sentence2", "answer"),
        _classify(_NO_YES, sentence1="sentence1", sentence2="sentence2"), options=_NO_YES,
        metric_fns=(t5_metrics.f1_score_with_invalid, t5_metrics.accuracy),
        postprocess_fn=_label_id(_NO_YES)),
    "glue_qqp": DatasetSpec(
        "glue/qqp:2.0.0", _dev_from_train(), ("question1", "question2", "answer"), _qqp,
        options=_NO_YES, metric_fns=(t5_metrics.f1_score_with_invalid, t5_metrics.accuracy),
        postprocess_fn=_label_id(_NO_YES)),
    "paws_wiki": DatasetSpec(
        "paws_wiki:1.1.0", _official(), ("sentence1", "sentence2", "answer"),
        _classify(_NO_YES, sentence1="sentence1", sentence2="sentence2"), options=_NO_YES),
    "stsb": DatasetSpec(
        "glue/stsb:2.0.0", _dev_from_train(dev=100, capped=False),
        ("sentence1", "sentence2", "answer_str", "answer"), _stsb,
        options=_STSB, postprocess_fn=t5_post.string_to_float,
        metric_fns=(t5_metrics.pearson_corrcoef, t5_metrics.spearman_corrcoef)),
    # --- sentiment -------------------------------------------------------------------
    "imdb_reviews": DatasetSpec("imdb_reviews/plain_text:1.0.0",
                                _dev_from_train(test="test", capped=False),
                                ("text", "answer"), _imdb, options=_POLARITY),
    "sentiment140": DatasetSpec(
        "sentiment140:1.0.0", _dev_from_train(test="test"), ("text", "answer"), _sentiment140,
        options=_POLARITY),
    "yelp_polarity_reviews": DatasetSpec("yelp_polarity_reviews:0.2.0",
                                         _dev_from_train(test="test"),
                                         ("text", "answer"), _yelp, options=_POLARITY),
    "sst2": DatasetSpec("glue/sst2:2.0.0", _dev_from_train(), ("sentence", "answer"),
                        _classify(_POLARITY, sentence="sentence"), options=_POLARITY),
    # --- text formatting ---------------------------------------------------------------
    "true_case": DatasetSpec("para_crawl/enda:1.2.0", _paracrawl_slices(0), ("lower", "answer"),
                             _true_case, keep=lambda ex: tf.not_equal(
                                 tf.strings.lower(ex["en"]), ex["en"]), **_EDIT),
    "fix_punct": DatasetSpec("para_crawl/enda:1.2.0", _paracrawl_slices(1),
                             ("no_punct", "answer"), _fix_punct,
                             keep=lambda ex: tf.strings.regex_full_match(
                                 ex["en"], r"(?s).*[^\w\s].*"), **_EDIT),
    "word_segment": DatasetSpec("para_crawl/enda:1.2.0", _paracrawl_slices(2),
                                ("no_space", "answer"), _word_segment, **_EDIT),
    # --- commonsense ---------------------------------------------------------------------
    "copa": DatasetSpec("super_glue/copa:1.0.2", _dev_from_train(dev=50, capped=False),
                        ("premise", "question", "answer"), _copa, options=()),
    "hellaswag": DatasetSpec("hellaswag:1.1.0", _dev_from_train(),
                             ("context", "activity_label", "answer"), _hellaswag, options=(),
                             keep=_label_in("endings")),
    "story_cloze": DatasetSpec(
        "story_cloze/2016:1.0.0",
        {"train": "validation[:-200]", "validation": "validation[-200:]", "test": "test"},
        ("context", "answer"), _story_cloze, options=(), keep=_label_in("endings", offset=1)),
    "piqa": DatasetSpec("piqa:1.0.0", _dev_from_train(dev=100, capped=False), ("goal", "answer"),
                        _choices(choice_keys=("sol1", "sol2"), goal="goal"), options=()),
    # --- translation ---------------------------------------------------------------------
    "para_crawl_enes": DatasetSpec(
        "para_crawl/enes:1.2.0",
        {"train": "train[:30000]", "validation": "train[-1200:-1000]", "test": "train[-1000:]"},
        _TRANSLATION_FIELDS, _translation("Spanish", "es"), **_BLEU),
    "wmt14_enfr": DatasetSpec("wmt14_translate/fr-en:1.0.0", _official(), _TRANSLATION_FIELDS,
                              _translation("French", "fr"), **_BLEU),
    **{f"wmt16_translate_{code}en": DatasetSpec(
        f"wmt16_translate/{code}-en:1.0.0", _official(), _TRANSLATION_FIELDS,
        _translation(language, code), **_BLEU) for code, language in _WMT16.items()},
    # --- coreference ----------------------------------------------------------------------
    "definite_pronoun_resolution": DatasetSpec(
        "definite_pronoun_resolution:1.1.0", _dev_from_train(test="test", capped=False),
        ("sentence", "pronoun", "answer"),
        lambda ex: {"sentence": ex["sentence"], "pronoun": ex["pronoun"],
                    "options": ex["candidates"], "answer": _pick(ex["candidates"], ex["label"])},
        options=()),
    "winogrande": DatasetSpec(
        "winogrande:1.2.0", _dev_from_train(train="train_xl"),
        ("context", "answer"), _winogrande, options=()),
    # WSC273 has a test split only (FLAN evaluates it, and no FLAN mixture holds it).
    "wsc273": DatasetSpec("wsc273:1.0.0", {"test": "test"}, ("context", "answer"), _wsc273,
                          options=()),
    "wsc": DatasetSpec(
        "super_glue/wsc:1.0.2", _dev_from_train(dev=50, capped=False),
        ("context", "text1", "text2", "answer"),
        _classify(_NO_YES, context="text", text1="span1_text", text2="span2_text"),
        options=_NO_YES),
    # --- entailment -------------------------------------------------------------------------
    # anli/r1 holds fewer than 30,000 training examples, so FLAN reads all of it.
    **{f"anli_{r}": DatasetSpec(
        f"anli/{r}:0.1.0", _official(capped=r != "r1"), ("context", "hypothesis", "answer"),
        _classify(_ANLI, context="context", hypothesis="hypothesis"), options=_ANLI)
       for r in ("r1", "r2", "r3")},
    "cb": DatasetSpec(
        "super_glue/cb:1.0.2", _dev_from_train(dev=50, capped=False),
        ("premise", "hypothesis", "answer"),
        _classify(_CB, premise="premise", hypothesis="hypothesis"), options=_CB,
        metric_fns=(t5_metrics.mean_multiclass_f1(num_classes=3), t5_metrics.accuracy)),
    "rte": DatasetSpec(
        "super_glue/rte:1.0.2", _dev_from_train(capped=False),
        ("premise", "hypothesis", "answer"),
        _classify(_YES_NO, premise="premise", hypothesis="hypothesis"), options=_YES_NO),
    "mnli_matched": DatasetSpec(
        "glue/mnli:2.0.0", _dev_from_train(test="validation_matched"),
        ("premise", "hypothesis", "answer"),
        _classify(_NLI3, premise="premise", hypothesis="hypothesis"), options=_NLI3),
    "mnli_mismatched": DatasetSpec(
        "glue/mnli:2.0.0", _dev_from_train(test="validation_mismatched"),
        ("premise", "hypothesis", "answer"),
        _classify(_NLI3, premise="premise", hypothesis="hypothesis"), options=_NLI3),
    "qnli": DatasetSpec(
        "glue/qnli:2.0.0", _dev_from_train(), ("sentence", "question", "answer"),
        _classify(_YES_NO, sentence="sentence", question="question"), options=_YES_NO),
    "wnli": DatasetSpec(
        "glue/wnli:2.0.0", _dev_from_train(dev=30, capped=False),
        ("sentence1", "sentence2", "answer"),
        _classify(_NO_YES, sentence1="sentence1", sentence2="sentence2"), options=_NO_YES),
    "snli": DatasetSpec(
        "snli:1.1.0", _official(), ("premise", "hypothesis", "answer"),
        _classify(_NLI3, premise="premise", hypothesis="hypothesis"), options=_NLI3,
        keep=_has_label),
    # --- math -------------------------------------------------------------------------------
    "math_dataset": DatasetSpec(
        "math_dataset/algebra__linear_1d:1.0.0", _dev_from_train(test="test"),
        ("question", "answer"), _rename(question="question", answer="answer")),
    # --- conversational QA --------------------------------------------------------------------
    # FLAN_QUIRKS: FLAN scores these against the characters of the one answer string.
    "quac": DatasetSpec("quac:1.0.0", _dev_from_train(),
                        ("title", "background", "context", "question", "answer"), _quac,
                        metric_fns=(t5_metrics.trivia_qa,)),
    "coqa": DatasetSpec(
        "coqa:1.0.0", _dev_from_train(test="test", dev=100, capped=False),
        ("text", "numbered_questions", "numbered_answers"), _coqa,
        metric_fns=(t5_metrics.squad,)),
    # --- word disambiguation, acceptability, question classification ------------------------
    "wic": DatasetSpec(
        "super_glue/wic:1.0.2", _dev_from_train(capped=False),
        ("sentence1", "sentence2", "word", "answer"),
        _classify(("different meanings", "the same meaning"), sentence1="sentence1",
                  sentence2="sentence2", word="word"),
        options=("different meanings", "the same meaning")),
    "cola": DatasetSpec(
        "glue/cola:2.0.0", _dev_from_train(capped=False), ("sentence", "answer"),
        _classify(("unacceptable", "acceptable"), sentence="sentence"),
        options=("unacceptable", "acceptable")),
    "trec": DatasetSpec("trec:1.0.0", _dev_from_train(test="test", capped=False),
                        ("text", "answer"),
                        _classify(_TREC, label_key="label-coarse", text="text"), options=_TREC),
    # --- reading comprehension with commonsense ---------------------------------------------
    # FLAN names deduplicate_metric(squad), whose grouping cannot read t5_post.qa's answer
    # lists (it raises); each of our ReCoRD examples is one query, so squad over every
    # answer is what it sets out to compute (README, "Fidelity to FLAN").
    "record": DatasetSpec("super_glue/record:1.0.2", _dev_from_train(),
                          ("passage", "query", "options_str", "answer"), _record, options=(),
                          **_SQUAD),
    "cosmos_qa": DatasetSpec(
        "cosmos_qa:1.0.0", _dev_from_train(capped=False), ("context", "question", "answer"),
        _choices(choice_keys=("answer0", "answer1", "answer2", "answer3"),
                 context="context", question="question"), options=()),
}

# Sanity: the answers of fixed-option datasets are produced by _classify from
# `options`; per-example choices are marked with options=().
assert all(s.fields and "options" not in s.fields for s in DATASETS.values())

# ---------------------------------------------------------------------------
# Where we knowingly differ from FLAN 2021's code, and FLAN's evident bugs.

# dataset -> (FLAN 2021's tfds_name, why ours differs). Tested against FLAN's code.
VERSION_CHOICES: dict[str, tuple[str, str]] = {
    **{d: (f"glue/{c}:1.0.0", "FLAN's later pin")
       for d, c in (("glue_mrpc", "mrpc"), ("glue_qqp", "qqp"), ("stsb", "stsb"),
                    ("sst2", "sst2"), ("mnli_matched", "mnli"), ("mnli_mismatched", "mnli"),
                    ("qnli", "qnli"), ("wnli", "wnli"))},
    "cola": ("glue/cola:1.0.0", "FLAN's later pin is unversioned glue/cola: the newest, 2.0.0"),
    **{d: (f"gem/{d}:1.0.0", "FLAN's later pin (GEM 1.0.0 no longer builds)")
       for d in ("common_gen", "dart", "e2e_nlg", "web_nlg_en")},
    "paws_wiki": ("paws_wiki:1.0.0", "FLAN's later pin (TFDS 4.9.10 builds only 1.1.0)"),
    "hellaswag": ("hellaswag:0.0.1", "FLAN's later pin"),
    "cnn_dailymail": ("cnn_dailymail:3.1.0", "TFDS 4.9.10 builds only 3.4.0"),
    "multi_news": ("multi_news:1.0.0", "TFDS 4.9.10 builds only 2.1.0"),
    "winogrande": ("winogrande:1.1.0", "TFDS 4.9.10 builds only 1.2.0"),
}


@dataclasses.dataclass(frozen=True)
class Quirk:
    """A FLAN behaviour we reproduce by default, and the spec fields that fix it."""

    what: str
    fix: Mapping[str, Any]


FLAN_QUIRKS: dict[str, Quirk] = {
    "cb": Quirk(
        "mean_3class_f1 compares the answer strings with class ids 0-2, so it is always 0",
        dict(postprocess_fn=_label_id(_CB))),
    "quac": Quirk(
        "no postprocessor: trivia_qa scores the prediction against each character of the "
        "answer string instead of against the answer",
        dict(postprocess_fn=flan_metrics.target_as_only_answer)),
    "coqa": Quirk(
        "no postprocessor: squad scores the prediction against each character of the "
        "numbered answers instead of against the whole string",
        dict(postprocess_fn=flan_metrics.target_as_only_answer)),
}


def specs(fix_flan_quirks: bool = False) -> dict[str, DatasetSpec]:
    """DATASETS, with FLAN_QUIRKS fixed when asked."""
    if not fix_flan_quirks:
        return dict(DATASETS)
    return {name: dataclasses.replace(spec, **FLAN_QUIRKS[name].fix) if name in FLAN_QUIRKS
            else spec for name, spec in DATASETS.items()}
