"""Task clusters of the FLAN 2021 collection, and which clusters each held-out split trains on.

Two groupings, both as data:

  CLUSTERS        the 17 fine-grained clusters of FLAN's code (task_splits.py), in
                  its order; the inter-cluster split index is a position in it.
  PAPER_CLUSTERS  the 12 clusters of the paper's Figure 3 (62 datasets when ANLI,
                  MNLI, ARC and SQuAD count once each). The paper's "Misc." joins
                  seven small code clusters; true_case and word_segment are in the
                  code's text_formatting cluster but not among the paper's 62.

Held-out rules (FLAN's): holding out reading_comprehension or common_sense also
drops read_comp_and_common_sense from training and vice versa; paraphrase and
entailment exclude each other.
"""
from __future__ import annotations

CLUSTERS: dict[str, tuple[str, ...]] = {
    "summarization": (
        "aeslc", "cnn_dailymail", "gigaword", "multi_news", "newsroom", "samsum", "xsum",
        "ag_news_subset", "opinion_abstracts_rotten_tomatoes", "opinion_abstracts_idebate",
        "wiki_lingua_english_en"),
    "structure_to_text": ("web_nlg_en", "common_gen", "e2e_nlg", "dart"),
    "reading_comprehension": (
        "squad_v1", "squad_v2", "drop", "multirc", "openbookqa", "bool_q"),
    "open_domain_qa": ("trivia_qa", "natural_questions", "arc_challenge", "arc_easy"),
    "paraphrase": ("glue_mrpc", "glue_qqp", "paws_wiki", "stsb"),
    "sentiment": ("imdb_reviews", "sentiment140", "yelp_polarity_reviews", "sst2"),
    "text_formatting": ("true_case", "fix_punct", "word_segment"),
    "common_sense": ("copa", "hellaswag", "story_cloze", "piqa"),
    "translation": (
        "para_crawl_enes", "wmt14_enfr", "wmt16_translate_deen", "wmt16_translate_tren",
        "wmt16_translate_csen", "wmt16_translate_fien", "wmt16_translate_roen",
        "wmt16_translate_ruen"),
    "coreference": ("definite_pronoun_resolution", "winogrande", "wsc"),
    "entailment": (
        "anli_r1", "anli_r2", "anli_r3", "cb", "rte", "mnli_matched", "mnli_mismatched", "qnli",
        "wnli", "snli"),
    "math": ("math_dataset",),
    "conversational_qa": ("quac", "coqa"),
    "word_disambiguation": ("wic",),
    "linguistic_acceptability": ("cola",),
    "question_classification": ("trec",),
    "read_comp_and_common_sense": ("record", "cosmos_qa"),
}

PAPER_CLUSTERS: dict[str, tuple[str, ...]] = {
    "natural_language_inference": CLUSTERS["entailment"],
    "commonsense": CLUSTERS["common_sense"],
    "sentiment": CLUSTERS["sentiment"],
    "paraphrase": CLUSTERS["paraphrase"],
    "closed_book_qa": CLUSTERS["open_domain_qa"],
    "struct_to_text": CLUSTERS["structure_to_text"],
    "translation": CLUSTERS["translation"],
    "reading_comprehension": CLUSTERS["reading_comprehension"],
    "reading_comprehension_with_commonsense": CLUSTERS["read_comp_and_common_sense"],
    "coreference": CLUSTERS["coreference"],
    "misc": ("quac", "coqa", "wic", "trec", "cola", "math_dataset", "fix_punct"),
    "summarization": CLUSTERS["summarization"],
}

# Datasets the paper counts as one (same format and instructions).
PAPER_COUNTS_AS_ONE: tuple[tuple[str, ...], ...] = (
    ("anli_r1", "anli_r2", "anli_r3"), ("mnli_matched", "mnli_mismatched"),
    ("arc_challenge", "arc_easy"), ("squad_v1", "squad_v2"))

# Held-out cluster -> clusters that may not be trained on alongside it.
_EXCLUDED_WITH: dict[str, frozenset[str]] = {
    "reading_comprehension": frozenset({"read_comp_and_common_sense"}),
    "common_sense": frozenset({"read_comp_and_common_sense"}),
    "read_comp_and_common_sense": frozenset({"reading_comprehension", "common_sense"}),
    "paraphrase": frozenset({"entailment"}),
    "entailment": frozenset({"paraphrase"}),
}

# Training clusters of FLAN's cluster-count ablation, in the order they are
# added, and the clusters it evaluates on.
DIVERSITY_TRAIN_ORDER: tuple[str, ...] = (
    "summarization", "translation", "reading_comprehension", "sentiment", "structure_to_text",
    "coreference", "conversational_qa", "paraphrase")
DIVERSITY_TEST_CLUSTERS: tuple[str, ...] = ("entailment", "common_sense", "open_domain_qa")

# SuperGLUE datasets: the held-out set of FLAN's task-count and template-count ablations.
SUPERGLUE: frozenset[str] = frozenset(
    {"bool_q", "cb", "copa", "multirc", "record", "rte", "wic", "wsc"})


def cluster_of(dataset: str) -> str:
    """The (first) code cluster holding `dataset`."""
    for cluster, members in CLUSTERS.items():
        if dataset in members:
            return cluster
    raise KeyError(f"{dataset!r} is in no FLAN cluster")


def excluded_clusters(held_out: str) -> frozenset[str]:
    """Clusters left out of training when `held_out` is evaluated (itself included)."""
    if held_out not in CLUSTERS:
        raise KeyError(f"unknown cluster {held_out!r}; clusters: {sorted(CLUSTERS)}")
    return frozenset({held_out}) | _EXCLUDED_WITH.get(held_out, frozenset())


def inter_cluster_split(held_out: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train datasets, test datasets) with `held_out`'s cluster held out.

    A dataset listed in a test cluster never trains, even if another cluster lists it.
    """
    test = CLUSTERS[held_out]
    excluded = excluded_clusters(held_out)
    train = [d for c, members in CLUSTERS.items() if c not in excluded for d in members]
    return tuple(dict.fromkeys(d for d in train if d not in test)), test
