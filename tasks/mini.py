"""Offline mini-FLAN: twelve synthetic instruction-tuning datasets in six clusters.

Every example is generated from a fixed seed (no files, no downloads), so a
fresh clone trains and evaluates the same data everywhere. The clusters mirror
FLAN's idea of task families.

The datasets register through the same task factory as the FLAN 2021 collection
(tasks.flan.registration.register_dataset_tasks), so every dataset `d` has FLAN's
task names: `d_{N}templates` (training, N templates round robin), `d_type_{i}`,
`d_type_{i}_scoring_eval`, their few-shot variants, `d_no_template`, ... and
`d_{N}templates_scoring_eval` (rank classification, templates round robin). The
mixtures hold one cluster out, as FLAN's zero-shot evaluation does:

    mini_flan_heldout_{cluster}_train          `d_10templates` of the other clusters
    mini_flan_heldout_{cluster}_eval           the held-out cluster's `d_10templates`
    mini_flan_heldout_{cluster}_scoring_eval   the same, classification datasets by
                                               rank classification
    mini_flan_all_train                        every dataset's `d_10templates`
    mini_flan_all_scoring_eval                 every dataset, as the scoring_eval mixtures

Each dataset has ten templates in FLAN's PATTERNS format (see flan_jax/templates.py);
the last two of each list turn the task around (e.g. "write a positive review"), which
the summary recognises as FLAN's by content (tasks.flan.reporting.turned_around).

Importing this module registers the tasks and mixtures with seqio; importing it
again (e.g. via another module path) replaces them instead of failing.
"""
from __future__ import annotations

import dataclasses
import functools
import random
import re
import zlib
from typing import Any, Callable, Mapping

import numpy as np
import seqio
import tensorflow as tf
from t5.evaluation import metrics as t5_metrics

from flan_jax import templates as templates_lib
from tasks.flan import registration
from tasks.flan import reporting

# ---------------------------------------------------------------------------
# Sizes, seeds, clusters: the data that configs and tests rely on.

COLLECTION = "mini_flan"  # registration.Registered.collection of these datasets
SPLIT_SIZES: Mapping[str, int] = {"train": 2000, "validation": 200, "test": 200}
DATA_SEED = "mini-flan-v1"  # changing it changes every example, like a new dataset version
MIXING_CAP = registration.MIXING_CAP  # FLAN caps each dataset's examples-proportional rate at 3k
NUM_TEMPLATES = 10  # the templates per dataset; mixtures use `d_10templates`

CLUSTERS: dict[str, tuple[str, ...]] = {
    "arithmetic": ("mini_addition", "mini_subtraction"),
    "string_editing": ("mini_reverse_word", "mini_drop_vowels"),
    "sentiment": ("mini_sentiment", "mini_sentiment_3way"),
    "entailment": ("mini_nli", "mini_rte"),
    "extractive_qa": ("mini_people_qa", "mini_places_qa"),
    "translation": ("mini_translate_en_lomi", "mini_translate_lomi_en"),
}
DATASET_NAMES: tuple[str, ...] = tuple(d for members in CLUSTERS.values() for d in members)

ALL_TRAIN_MIXTURE = "mini_flan_all_train"
ALL_SCORING_EVAL_MIXTURE = "mini_flan_all_scoring_eval"


def heldout_train_mixture(cluster: str) -> str:
    """Name of the mixture that trains on every cluster except `cluster`."""
    return f"mini_flan_heldout_{cluster}_train"


def heldout_eval_mixture(cluster: str) -> str:
    """Name of the mixture holding only `cluster`'s tasks, for zero-shot evaluation."""
    return f"mini_flan_heldout_{cluster}_eval"


def heldout_scoring_eval_mixture(cluster: str) -> str:
    """The eval mixture of `cluster`, classification tasks scored by rank classification."""
    return f"mini_flan_heldout_{cluster}_scoring_eval"


def train_task_name(dataset: str) -> str:
    """The task mixtures train `dataset` with: every template, round robin."""
    return registration.templated_task_name(dataset, NUM_TEMPLATES)


def scoring_eval_task_name(dataset: str) -> str:
    """The task `dataset` is evaluated with in the scoring_eval mixtures: rank
    classification (templates round robin) for classification data, else generation."""
    if dataset_options(dataset):
        return registration.round_robin_scoring_task_name(dataset, NUM_TEMPLATES)
    return train_task_name(dataset)


def _mixture_members() -> dict[str, tuple[str, ...]]:
    train = {d: train_task_name(d) for d in DATASET_NAMES}
    scored = {d: scoring_eval_task_name(d) for d in DATASET_NAMES}
    members = {ALL_TRAIN_MIXTURE: tuple(train.values()),
               ALL_SCORING_EVAL_MIXTURE: tuple(scored.values())}
    for cluster, held_out in CLUSTERS.items():
        members[heldout_train_mixture(cluster)] = tuple(
            train[d] for d in DATASET_NAMES if d not in held_out)
        members[heldout_eval_mixture(cluster)] = tuple(train[d] for d in held_out)
        members[heldout_scoring_eval_mixture(cluster)] = tuple(scored[d] for d in held_out)
    return members


def eval_clusters() -> dict[str, tuple[str, ...]]:
    """cluster -> every registered task of its datasets (the summary's EVAL_CLUSTERS)."""
    return reporting.task_clusters(CLUSTERS)


# ---------------------------------------------------------------------------
# Vocabulary the generators draw from. Made-up words are English-like so a
# byte-level model can read them; their meaning is only learnable from data.

_FIRST_NAMES = (
    "Ana", "Bram", "Cora", "Dario", "Elin", "Fenn", "Greta", "Hugo", "Ines", "Joss",
    "Kira", "Lev", "Mara", "Nils", "Orla", "Pim", "Quin", "Rosa", "Silas", "Tova",
    "Ugo", "Vera", "Wim", "Xena", "Yara", "Zeno")
_LAST_NAMES = (
    "Ashby", "Brindle", "Corvel", "Dunmore", "Elsworth", "Farrow", "Galloway",
    "Hollis", "Ivers", "Jessop", "Kettle", "Larkin", "Morel", "Nettles", "Oakes",
    "Pruett")
_TOWNS = (
    "Tolvik", "Brenholt", "Quendal", "Lisport", "Marrowby", "Ostrel", "Pellin",
    "Vardun", "Wickmere", "Ardel", "Caskby", "Dunlow", "Fennick", "Harrowgate",
    "Imberly", "Jorvale", "Kestwick", "Lundby", "Mossfield", "Northam")
_COUNTRIES = (
    "Alvaria", "Brenland", "Corvania", "Dessia", "Ostria", "Pelland", "Rovenia", "Tarsk")
_JOBS = (
    "baker", "sailor", "painter", "teacher", "doctor", "farmer", "carpenter",
    "weaver", "clockmaker", "poet", "miner", "gardener")
_COLLECTIBLES = (
    "stamps", "old maps", "sea shells", "pressed flowers", "coins", "toy boats",
    "pocket watches", "postcards")
_TOWN_KINDS = ("harbor", "mountain", "river", "market", "mining", "farming")
_TOWN_FAMOUS_FOR = (
    "glass bridges", "apple orchards", "salt mines", "a tall clock tower",
    "blue wool", "a river festival", "stone windmills", "honey cakes",
    "painted boats", "a huge library")

_REAL_WORDS = (
    "garden", "window", "planet", "silver", "candle", "pocket", "market", "rabbit",
    "forest", "button", "kitten", "ladder", "mirror", "pepper", "ribbon", "saddle",
    "tunnel", "velvet", "wallet", "yellow", "anchor", "bridge", "castle", "dragon",
    "engine", "finger", "guitar", "harbor", "island", "jacket", "lemon", "monkey",
    "needle", "orange", "pillow", "puzzle", "river", "spider", "tomato", "winter")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr")
_VOWELS = "aeiou"
_CODAS = ("", "", "", "n", "r", "l", "s")

# Sentiment lexicon; the last words of each list are made up.
_POSITIVE = (
    "great", "wonderful", "delightful", "excellent", "charming", "lovely", "superb",
    "pleasant", "brilliant", "cheerful", "glimmerous", "zingful", "sunnish", "plumsome")
_NEGATIVE = (
    "awful", "terrible", "dreadful", "boring", "dull", "horrible", "miserable",
    "bland", "clumsy", "disappointing", "grumbly", "drabbish", "murkful", "glumsome")
_NEUTRAL = (
    "ordinary", "average", "plain", "typical", "beige", "square", "standard",
    "quiet", "wooden", "middling", "roundish", "mediumish", "greyish", "plonkish")
_INTENSIFIERS = ("", "", "really ", "very ", "quite ", "truly ")

# Toy language "Lomi": a word-for-word dictionary from English.
_LOMI = {
    "the": "ka",
    "big": "muro", "small": "tili", "red": "sena", "old": "vaku", "happy": "lobi",
    "green": "pesa", "quiet": "nomi", "young": "jiru",
    "dog": "hunto", "cat": "mika", "bird": "pipo", "farmer": "tasu", "child": "lelu",
    "horse": "kavo", "fish": "suma", "king": "reno", "teacher": "doma", "baker": "pano",
    "sees": "vedi", "likes": "amu", "follows": "seku", "helps": "ajo", "finds": "tovi",
    "watches": "ostu", "feeds": "nuri", "chases": "kasi",
    "today": "hoda", "again": "riva", "quickly": "zufa",
}
_EN_ADJECTIVES = ("big", "small", "red", "old", "happy", "green", "quiet", "young")
_EN_NOUNS = ("dog", "cat", "bird", "farmer", "child", "horse", "fish", "king", "teacher", "baker")
_EN_VERBS = ("sees", "likes", "follows", "helps", "finds", "watches", "feeds", "chases")
_EN_ADVERBS = ("today", "again", "quickly")

# ---------------------------------------------------------------------------
# Example generators: one per task, each draws one raw example from `rng`.
# Values are strings; classification answers come from the task's options.

Example = dict[str, str]


def _make_addition(rng: random.Random) -> Example:
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    return {"a": str(a), "b": str(b), "answer": str(a + b)}


def _make_subtraction(rng: random.Random) -> Example:
    a = rng.randint(0, 99)
    b = rng.randint(0, a)  # keep results non-negative
    return {"a": str(a), "b": str(b), "answer": str(a - b)}


def _word(rng: random.Random) -> str:
    """A real word one time in five, otherwise a pronounceable made-up one."""
    if rng.random() < 0.2:
        return rng.choice(_REAL_WORDS)
    syllables = rng.randint(2, 3)
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                   for _ in range(syllables))


def _make_reverse_word(rng: random.Random) -> Example:
    word = _word(rng)
    return {"word": word, "answer": word[::-1]}


def _make_drop_vowels(rng: random.Random) -> Example:
    word = _word(rng)  # every syllable has an onset, so the answer is never empty
    return {"word": word, "answer": re.sub(f"[{_VOWELS}]", "", word)}


_REVIEW_NOUNS = (
    "movie", "concert", "book", "play", "album", "show", "game", "novel", "musical",
    "podcast", "comic", "opera", "film", "series", "song", "poem", "painting", "exhibit",
    "ballet", "documentary")
# (frame, negated): a negated frame flips the adjective's polarity.
_REVIEW_FRAMES = (
    ("The {noun} was {adj}.", False),
    ("I thought the {noun} was {adj}.", False),
    ("Honestly, this {noun} is {adj}.", False),
    ("My friends found the {noun} {adj}, and so did I.", False),
    ("This {noun} felt {adj} from start to finish.", False),
    ("The {noun} was not {adj}.", True),
    ("I would not call this {noun} {adj}.", True),
    ("Nobody could say the {noun} was {adj}.", True),
    ("The {noun} was not {adj} at all.", True),
    ("I did not find the {noun} {adj}.", True),
)


def _make_sentiment(rng: random.Random) -> Example:
    frame, negated = rng.choice(_REVIEW_FRAMES)
    positive_word = rng.random() < 0.5
    # No intensifier under negation: "not quite dreadful" is no longer clearly positive.
    intensifier = "" if negated else rng.choice(_INTENSIFIERS)
    adj = intensifier + rng.choice(_POSITIVE if positive_word else _NEGATIVE)
    sentence = frame.format(noun=rng.choice(_REVIEW_NOUNS), adj=adj)
    return {"sentence": sentence, "answer": "positive" if positive_word != negated else "negative"}


_COMMENT_NOUNS = (
    "soup", "hotel", "chair", "phone", "cafe", "jacket", "train ride", "museum",
    "lamp", "bakery", "park", "backpack")
_COMMENT_FRAMES = (
    "The {noun} is {adj}.", "Our {noun} turned out {adj}.", "I found the {noun} {adj}.",
    "Overall, the {noun} seemed {adj} to me.", "People describe the {noun} as {adj}.",
    "My new {noun} looks {adj}.")
_LEXICON_BY_LABEL = {"positive": _POSITIVE, "neutral": _NEUTRAL, "negative": _NEGATIVE}


def _make_sentiment_3way(rng: random.Random) -> Example:
    label = rng.choice(sorted(_LEXICON_BY_LABEL))
    adj = rng.choice(_INTENSIFIERS) + rng.choice(_LEXICON_BY_LABEL[label])
    sentence = rng.choice(_COMMENT_FRAMES).format(noun=rng.choice(_COMMENT_NOUNS), adj=adj)
    return {"sentence": sentence, "answer": label}


_RELATIONS = (
    ("taller", "shorter"), ("older", "younger"), ("faster", "slower"),
    ("stronger", "weaker"), ("richer", "poorer"), ("louder", "quieter"))
_NLI_OPTIONS = ("yes", "it is not possible to tell", "no")


def _comparison(rng: random.Random, relation: tuple[str, str], bigger: str, smaller: str) -> str:
    """States bigger > smaller, in either direction of the relation."""
    more, less = relation
    if rng.random() < 0.5:
        return f"{bigger} is {more} than {smaller}."
    return f"{smaller} is {less} than {bigger}."


def _make_nli(rng: random.Random) -> Example:
    """Comparisons between people; the hypothesis follows, contradicts or is open."""
    x, y, z, stranger = rng.sample(_FIRST_NAMES, 4)
    relation = rng.choice(_RELATIONS)
    if rng.random() < 0.5:
        facts, known = [(x, y)], [(x, y)]
    else:  # a chain, so the transitive conclusion x > z follows too
        facts, known = [(x, y), (y, z)], [(x, y), (y, z), (x, z)]
    premise = " ".join(_comparison(rng, relation, a, b) for a, b in facts)
    answer = rng.choice(_NLI_OPTIONS)
    a, b = rng.choice(known)
    if answer == "yes":
        hypothesis = _comparison(rng, relation, a, b)
    elif answer == "no":
        hypothesis = _comparison(rng, relation, b, a)
    elif rng.random() < 0.5:  # someone the premise never mentions
        hypothesis = _comparison(rng, relation, *rng.sample([a, stranger], 2))
    else:  # a relation the premise says nothing about
        other = rng.choice([r for r in _RELATIONS if r != relation])
        hypothesis = _comparison(rng, other, *rng.sample([a, b], 2))
    return {"premise": premise, "hypothesis": hypothesis, "answer": answer}


_RTE_PREMISES = (
    "{p} lives in {t}. {t} is a town in {c}.",
    "{p} lives in {t}, a town in {c}.",
    "{t} is in {c}. {p} has lived in {t} for years.",
    "{p}, a {job}, lives in {t}, which is in {c}.",
)


def _make_rte(rng: random.Random) -> Example:
    """Where people live; yes only when the premise guarantees the hypothesis."""
    p = rng.choice(_FIRST_NAMES)
    t, other_t = rng.sample(_TOWNS, 2)
    c, other_c = rng.sample(_COUNTRIES, 2)
    premise = rng.choice(_RTE_PREMISES).format(p=p, t=t, c=c, job=rng.choice(_JOBS))
    if rng.random() < 0.5:
        answer = "yes"
        hypothesis = rng.choice((f"{p} lives in {c}.", f"{p} lives in {t}.", f"{t} is in {c}."))
    else:
        answer = "no"
        hypothesis = rng.choice((
            f"{p} lives in {other_c}.", f"{t} is in {other_c}.",
            f"{p} lives in {other_t}.", f"{p} has never lived in {t}."))
    return {"premise": premise, "hypothesis": hypothesis, "answer": answer}


def _make_people_qa(rng: random.Random) -> Example:
    """A three-sentence biography and a question whose answer is a span of it."""
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    home, new_home = rng.sample(_TOWNS, 2)
    year, job, hobby = str(rng.randint(1800, 1999)), rng.choice(_JOBS), rng.choice(_COLLECTIBLES)
    facts = [  # (sentence, question, answer)
        (f"{first} worked as a {job}.", f"What was {first} {last}'s job?", job),
        (f"{first} liked to collect {hobby}.", f"What did {first} like to collect?", hobby),
        (f"Later, {first} moved to {new_home}.", f"Where did {first} move to?", new_home),
    ]
    kept = sorted(rng.sample(range(len(facts)), 2))  # keep story order, "Later" stays last
    born = f"{first} {last} was born in {home} in {year}."
    context = " ".join([born] + [facts[i][0] for i in kept])
    questions = [(f"Where was {first} {last} born?", home),
                 (f"In which year was {first} {last} born?", year)]
    questions += [facts[i][1:] for i in kept]
    question, answer = rng.choice(questions)
    return {"context": context, "question": question, "answer": answer}


def _make_places_qa(rng: random.Random) -> Example:
    """A short description of a made-up town and a question about it."""
    town, country = rng.choice(_TOWNS), rng.choice(_COUNTRIES)
    kind, famous_for = rng.choice(_TOWN_KINDS), rng.choice(_TOWN_FAMOUS_FOR)
    people, founded = f"{rng.randint(2, 90) * 100:,}", str(rng.randint(1100, 1900))
    facts = [  # (sentence, question, answer)
        (f"About {people} people live there.", f"How many people live in {town}?", people),
        (f"It is known for {famous_for}.", f"What is {town} known for?", famous_for),
        (f"It was founded in {founded}.", f"When was {town} founded?", founded),
    ]
    kept = sorted(rng.sample(range(len(facts)), 2))
    context = " ".join([f"{town} is a {kind} town in {country}."] + [facts[i][0] for i in kept])
    questions = [(f"Which country is {town} in?", country),
                 (f"What kind of town is {town}?", f"{kind} town")]
    questions += [facts[i][1:] for i in kept]
    question, answer = rng.choice(questions)
    return {"context": context, "question": question, "answer": answer}


def _noun_phrase(rng: random.Random) -> list[str]:
    adjective = [rng.choice(_EN_ADJECTIVES)] if rng.random() < 0.6 else []
    return ["the"] + adjective + [rng.choice(_EN_NOUNS)]


def _make_translation(rng: random.Random) -> Example:
    """An English sentence and its word-for-word Lomi translation."""
    words = _noun_phrase(rng) + [rng.choice(_EN_VERBS)] + _noun_phrase(rng)
    if rng.random() < 0.4:
        words.append(rng.choice(_EN_ADVERBS))
    return {"english": " ".join(words) + ".",
            "lomi": " ".join(_LOMI[w] for w in words) + "."}


# ---------------------------------------------------------------------------
# Templates, FLAN's PATTERNS format. The last two of each list turn the task
# around; the others ask for the answer.

PATTERNS: dict[str, list[tuple[str, str]]] = {
    "mini_addition": [
        ("What is {a} plus {b}?", "{answer}"),
        ("Add {a} and {b}.", "{answer}"),
        ("{a} + {b} = ?", "{answer}"),
        ("Compute the sum of {a} and {b}.", "{answer}"),
        ("You have {a} marbles and a friend gives you {b} more. How many marbles do you have now?", "{answer}"),
        ("Calculate: {a} + {b}\nAnswer:", "{answer}"),
        ("Work out the total when {b} is added to {a}.", "{answer}"),
        ("Sum these two numbers: {a}, {b}", "{answer}"),
        ("{a} plus what number gives {answer}?", "{b}"),
        ("Fill in the blank: {a} + ___ = {answer}", "{b}"),
    ],
    "mini_subtraction": [
        ("What is {a} minus {b}?", "{answer}"),
        ("Subtract {b} from {a}.", "{answer}"),
        ("{a} - {b} = ?", "{answer}"),
        ("How far apart are {a} and {b}? Give the difference.", "{answer}"),
        ("A shelf holds {a} books and {b} of them are taken away. How many books are left?", "{answer}"),
        ("Calculate: {a} - {b}\nAnswer:", "{answer}"),
        ("Take {b} away from {a}. What remains?", "{answer}"),
        ("How much is {a} take away {b}?", "{answer}"),
        ("{a} minus what number leaves {answer}?", "{b}"),
        ("Fill in the blank: {a} - ___ = {answer}", "{b}"),
    ],
    "mini_reverse_word": [
        ("Reverse the word \"{word}\".", "{answer}"),
        ("Write {word} backwards.", "{answer}"),
        ("Spell this word from its last letter to its first: {word}", "{answer}"),
        ("What do you get if you read \"{word}\" from right to left?", "{answer}"),
        ("Word: {word}\nReversed:", "{answer}"),
        ("Flip the order of the letters in {word}.", "{answer}"),
        ("Turn \"{word}\" around so that it reads the other way.", "{answer}"),
        ("{word}\n\nWrite the word above in reverse order.", "{answer}"),
        ("A word written backwards reads \"{answer}\". What is the word?", "{word}"),
        ("Which word becomes {answer} when you reverse it?", "{word}"),
    ],
    "mini_drop_vowels": [
        ("Remove all vowels from \"{word}\".", "{answer}"),
        ("Delete the letters a, e, i, o and u from this word: {word}", "{answer}"),
        ("Write {word} without its vowels.", "{answer}"),
        ("Word: {word}\nWithout vowels:", "{answer}"),
        ("Keep only the consonants of \"{word}\".", "{answer}"),
        ("What is left of the word {word} once the vowels are taken out?", "{answer}"),
        ("{word}\n\nStrip the vowels from the word above.", "{answer}"),
        ("Drop every vowel in {word} and write what remains.", "{answer}"),
        ("Removing the vowels from a word gave \"{answer}\". Suggest the original word.", "{word}"),
        ("Put vowels back into \"{answer}\" to make a word.", "{word}"),
    ],
    "mini_sentiment": [
        ("{sentence}\n\nIs the sentiment of this sentence positive or negative?\n\n{options_}", "{answer}"),
        ("What is the sentiment of the following review?\n{sentence}\n\n{options_}", "{answer}"),
        ("Review: {sentence}\nHow does the writer feel about it?\n\n{options_}", "{answer}"),
        ("Decide whether this sentence expresses a positive or a negative opinion.\n\n{sentence}\n\n{options_}", "{answer}"),
        ("\"{sentence}\"\nWhich word best describes the tone of this sentence?\n{options_}", "{answer}"),
        ("Classify the sentiment: {sentence}\n{options_}", "{answer}"),
        ("Someone wrote: {sentence}\n\nWas that a positive or a negative remark?\n\n{options_}", "{answer}"),
        ("{sentence}\nThe opinion above is...\n\n{options_}", "{answer}"),
        ("Write a {answer} one-sentence review.", "{sentence}"),
        ("Give an example of a sentence with {answer} sentiment.", "{sentence}"),
    ],
    "mini_sentiment_3way": [
        ("{sentence}\n\nIs this comment positive, negative or neutral?\n\n{options_}", "{answer}"),
        ("Comment: {sentence}\nWhat is the attitude of this comment?\n\n{options_}", "{answer}"),
        ("Label the feeling in the following text.\n\n{sentence}\n\n{options_}", "{answer}"),
        ("Does the speaker sound positive, negative, or neither?\n{sentence}\n\n{options_}", "{answer}"),
        ("\"{sentence}\"\n\nPick the sentiment of the quote.\n{options_}", "{answer}"),
        ("Sentiment analysis with three classes: {sentence}\n{options_}", "{answer}"),
        ("{sentence}\nHow would you rate the tone of that sentence?\n\n{options_}", "{answer}"),
        ("Read the text and choose its sentiment.\nText: {sentence}\n\n{options_}", "{answer}"),
        ("Write a sentence that sounds {answer}.", "{sentence}"),
        ("Compose a {answer} comment about a product or a place.", "{sentence}"),
    ],
    "mini_nli": [
        ("{premise}\n\nBased on the text above, is it true that \"{hypothesis}\"?\n\n{options_}", "{answer}"),
        ("Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail the hypothesis?\n\n{options_}", "{answer}"),
        ("Read the facts and answer the question.\n\nFacts: {premise}\nCan we conclude the following? {hypothesis}\n\n{options_}", "{answer}"),
        ("{premise}\nCan we infer the following?\n{hypothesis}\n\n{options_}", "{answer}"),
        ("Here is a statement: {premise}\n\nDoes it support the sentence \"{hypothesis}\"?\n{options_}", "{answer}"),
        ("{premise}\n\nQuestion: {hypothesis} Yes, no, or can't tell?\n\n{options_}", "{answer}"),
        ("Assume this is true: {premise}\nMust the following then be true as well? {hypothesis}\n\n{options_}", "{answer}"),
        ("Decide if the second text follows from the first.\n\nFirst: {premise}\nSecond: {hypothesis}\n\n{options_}", "{answer}"),
        ("{premise}\n\nWrite a statement that gets the answer \"{answer}\" when asked whether it follows from the text above.", "{hypothesis}"),
        ("Statement: {hypothesis}\nVerdict: {answer}\n\nWrite a short text for which this verdict about the statement is correct.", "{premise}"),
    ],
    "mini_rte": [
        ("{premise}\n\nDoes this mean that \"{hypothesis}\"?\n\n{options_}", "{answer}"),
        ("Premise: {premise}\nHypothesis: {hypothesis}\nIs the hypothesis true according to the premise?\n{options_}", "{answer}"),
        ("Text: {premise}\nClaim: {hypothesis}\nIs the claim supported by the text?\n\n{options_}", "{answer}"),
        ("{premise}\nFrom this, can we say \"{hypothesis}\"?\n\n{options_}", "{answer}"),
        ("Read: {premise}\n\nTrue or not: {hypothesis}\n\n{options_}", "{answer}"),
        ("Does the first text imply the second?\n\nFirst: {premise}\nSecond: {hypothesis}\n\n{options_}", "{answer}"),
        ("{premise} Given that, is \"{hypothesis}\" accurate?\n{options_}", "{answer}"),
        ("Here is some information: {premise}\nQuestion: Is the following true? {hypothesis}\n\n{options_}", "{answer}"),
        ("{premise}\n\nWrite a statement that is answered \"{answer}\" when asked if it follows from the text.", "{hypothesis}"),
        ("Claim: {hypothesis}\nDoes it follow? {answer}\n\nWrite a text that fits this judgement.", "{premise}"),
    ],
    "mini_people_qa": [
        ("{context}\n\nAnswer this question using the text above: {question}", "{answer}"),
        ("Read the passage and answer the question.\n\nPassage: {context}\nQuestion: {question}", "{answer}"),
        ("{context}\n{question}", "{answer}"),
        ("Question: {question}\nContext: {context}\nAnswer:", "{answer}"),
        ("Here is a short biography: {context}\n\n{question}", "{answer}"),
        ("Find the answer in the text.\n{context}\n\nQ: {question}\nA:", "{answer}"),
        ("{question}\n\nUse this information to answer: {context}", "{answer}"),
        ("Text: {context}\n\nWhat is the answer to \"{question}\"? Copy it from the text.", "{answer}"),
        ("{context}\n\nWrite a question about the text above whose answer is \"{answer}\".", "{question}"),
        ("Answer: {answer}\nPassage: {context}\nWhat question was asked?", "{question}"),
    ],
    "mini_places_qa": [
        ("{context}\n\nAccording to the description, answer: {question}", "{answer}"),
        ("Passage about a town: {context}\n\nQuestion: {question}\nAnswer:", "{answer}"),
        ("{context}\nQ: {question}", "{answer}"),
        ("Answer the question with a short phrase from the passage.\n\n{context}\n\n{question}", "{answer}"),
        ("Travel guide: {context}\n\n{question}", "{answer}"),
        ("Question: {question}\n\nRead this first: {context}", "{answer}"),
        ("{question}\nThe answer is in this text: {context}", "{answer}"),
        ("Extract the answer to \"{question}\" from the following.\n{context}", "{answer}"),
        ("{context}\n\nThe answer is \"{answer}\". What question leads to it?", "{question}"),
        ("Make up a quiz question about this passage. Its answer should be {answer}.\n\n{context}", "{question}"),
    ],
    "mini_translate_en_lomi": [
        ("Translate to Lomi: {english}", "{lomi}"),
        ("How do you say \"{english}\" in Lomi?", "{lomi}"),
        ("English: {english}\nLomi:", "{lomi}"),
        ("Translate the following English sentence into Lomi.\n\n{english}", "{lomi}"),
        ("{english}\n\nRewrite this in the Lomi language.", "{lomi}"),
        ("Give the Lomi version of this sentence: {english}", "{lomi}"),
        ("What is the Lomi translation of \"{english}\"?", "{lomi}"),
        ("Please translate from English to Lomi: {english}", "{lomi}"),
        ("This is a Lomi sentence: {lomi}\nWhat English sentence was it translated from?", "{english}"),
        ("Lomi: {lomi}\nEnglish:", "{english}"),
    ],
    "mini_translate_lomi_en": [
        ("Translate from Lomi to English: {lomi}", "{english}"),
        ("What does \"{lomi}\" mean in English?", "{english}"),
        ("Lomi: {lomi}\nEnglish translation:", "{english}"),
        ("{lomi}\n\nTranslate the Lomi text above into English.", "{english}"),
        ("Render this Lomi sentence in plain English: {lomi}", "{english}"),
        ("Here is a sentence in Lomi.\n{lomi}\nWhat is it in English?", "{english}"),
        ("Give the English meaning: {lomi}", "{english}"),
        ("Lomi to English. {lomi}", "{english}"),
        ("The English sentence \"{english}\" is a translation. What was the Lomi original?", "{lomi}"),
        ("English: {english}\nSay it in Lomi:", "{lomi}"),
    ],
}

TEMPLATES: dict[str, list[templates_lib.Template]] = templates_lib.load_patterns(PATTERNS)

# ---------------------------------------------------------------------------
# How each task is built and scored.


def _answers_as_list(output: str, example: Any = None, is_target: bool = False):
    """squad-style metrics take a list of acceptable answers per target."""
    del example
    return [output] if is_target else output


@dataclasses.dataclass(frozen=True)
class _TaskSpec:
    make_example: Callable[[random.Random], Example]
    options: tuple[str, ...] = ()  # answer choices, for classification tasks only
    # Exact match fits tasks with one right answer; extractive QA uses squad's
    # EM/F1, which forgive case and articles; translation adds BLEU.
    metric_fns: tuple[Callable[..., Mapping[str, float]], ...] = (t5_metrics.accuracy,)
    postprocess_fn: Callable[..., Any] | None = None
    # Fields whose content decides the split; None means the whole example.
    split_fields: tuple[str, ...] | None = None


# A passage belongs to one split, whichever question is asked about it.
_QA_SETTINGS = dict(
    metric_fns=(t5_metrics.squad,), postprocess_fn=_answers_as_list, split_fields=("context",))
_TRANSLATION_SETTINGS = dict(metric_fns=(t5_metrics.accuracy, t5_metrics.bleu))

_SPECS: dict[str, _TaskSpec] = {
    "mini_addition": _TaskSpec(_make_addition),
    "mini_subtraction": _TaskSpec(_make_subtraction),
    "mini_reverse_word": _TaskSpec(_make_reverse_word),
    "mini_drop_vowels": _TaskSpec(_make_drop_vowels),
    "mini_sentiment": _TaskSpec(_make_sentiment, options=("negative", "positive")),
    "mini_sentiment_3way": _TaskSpec(
        _make_sentiment_3way, options=("negative", "neutral", "positive")),
    "mini_nli": _TaskSpec(_make_nli, options=_NLI_OPTIONS),
    "mini_rte": _TaskSpec(_make_rte, options=("yes", "no")),
    "mini_people_qa": _TaskSpec(_make_people_qa, **_QA_SETTINGS),
    "mini_places_qa": _TaskSpec(_make_places_qa, **_QA_SETTINGS),
    "mini_translate_en_lomi": _TaskSpec(_make_translation, **_TRANSLATION_SETTINGS),
    "mini_translate_lomi_en": _TaskSpec(_make_translation, **_TRANSLATION_SETTINGS),
}


def dataset_options(dataset: str) -> tuple[str, ...]:
    """Answer choices of a classification dataset; () for generation datasets."""
    return _SPECS[dataset].options


# ---------------------------------------------------------------------------
# Generation into disjoint splits.

# An example's split is a hash of its content, not of the task, so no content
# can sit in two splits, even across tasks that share a generator (the two
# translation directions). 80/10/10 buckets leave room to draw unique examples.
_SPLIT_OF_BUCKET = ("test", "validation") + ("train",) * 8


def split_of(example: Mapping[str, str], fields: tuple[str, ...] | None = None) -> str:
    """The only split that may contain this example, judged by `fields` (default: all)."""
    key = "\x1f".join(f"{k}={example[k]}" for k in sorted(fields or example))
    return _SPLIT_OF_BUCKET[zlib.crc32(key.encode("utf-8")) % len(_SPLIT_OF_BUCKET)]


@functools.lru_cache(maxsize=None)
def generate_examples(dataset: str, split: str) -> tuple[Example, ...]:
    """The raw examples of one split, without options: unique and deterministic.

    Each split draws from its own random.Random seeded by (DATA_SEED, dataset,
    split), keeping only examples that hash into this split and are new.
    """
    spec, size = _SPECS[dataset], SPLIT_SIZES[split]
    rng = random.Random(f"{DATA_SEED}/{dataset}/{split}")
    examples: dict[tuple[tuple[str, str], ...], Example] = {}
    for _ in range(size * 100):  # a generous bound; typical use is ~2-12 draws each
        example = spec.make_example(rng)
        key = tuple(sorted(example.items()))
        if key not in examples and split_of(example, spec.split_fields) == split:
            examples[key] = example
            if len(examples) == size:
                return tuple(examples.values())
    raise RuntimeError(f"{dataset}: could not draw {size} unique {split} examples")


def _dataset_fn(
    split: str, shuffle_files: bool, seed: int | None = None, *, dataset: str
) -> tf.data.Dataset:
    """seqio FunctionDataSource entry point.

    The data is fixed by DATA_SEED; `shuffle_files` and `seed` are ignored
    because there are no files, and seqio shuffles examples after preprocessing.
    """
    del shuffle_files, seed
    examples = generate_examples(dataset, split)
    columns: dict[str, Any] = {k: [ex[k] for ex in examples] for k in examples[0]}
    options = dataset_options(dataset)
    if options:
        columns[templates_lib.OPTIONS_FIELD] = np.array([options] * len(examples), dtype=object)
    return tf.data.Dataset.from_tensor_slices(columns)


# ---------------------------------------------------------------------------
# Registration, through FLAN's task factory.

OUTPUT_FEATURES: dict[str, seqio.Feature] = {
    "inputs": seqio.Feature(vocabulary=seqio.ByteVocabulary(), add_eos=True),
    "targets": seqio.Feature(vocabulary=seqio.ByteVocabulary(), add_eos=True),
}


def _available_fields(dataset: str) -> list[str]:
    fields = list(_SPECS[dataset].make_example(random.Random(0)))
    if dataset_options(dataset):
        fields.append(templates_lib.OPTIONS_FIELD)
    return fields


def source(dataset: str) -> seqio.DataSource:
    """The generated splits of `dataset` as a seqio source."""
    return seqio.FunctionDataSource(functools.partial(_dataset_fn, dataset=dataset),
                                    splits=tuple(SPLIT_SIZES), num_input_examples=dict(SPLIT_SIZES))


def _cluster_of(dataset: str) -> str:
    return next(c for c, members in CLUSTERS.items() if dataset in members)


def register() -> None:
    """Registers (or re-registers) every mini-FLAN dataset's tasks, then every mixture."""
    assert set(_SPECS) == set(DATASET_NAMES) == set(PATTERNS), "dataset tables disagree"
    for dataset in DATASET_NAMES:
        spec = _SPECS[dataset]
        registration.register_dataset_tasks(
            dataset, TEMPLATES[dataset], source=source(dataset),
            available_fields=_available_fields(dataset), is_classification=bool(spec.options),
            cluster=_cluster_of(dataset), postprocess_fn=spec.postprocess_fn,
            metric_fns=spec.metric_fns, output_features=OUTPUT_FEATURES, collection=COLLECTION)
    for name, task_names in MIXTURES.items():
        # Training mixtures: examples-proportional, capped as FLAN's; eval: every example.
        registration.add_mixture(name, task_names, capped=name.endswith("_train"))


MIXTURES: dict[str, tuple[str, ...]] = _mixture_members()  # mixture name -> task names

register()
