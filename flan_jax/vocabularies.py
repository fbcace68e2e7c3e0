"""The SentencePiece vocabulary that FLAN tasks tokenize with, chosen by path at launch.

Tasks register when `tasks` is imported, which for gin launches happens while the gin files
are parsed, before their bindings are known. So tasks hold a `ConfiguredVocabulary`: a seqio
Vocabulary that resolves its SentencePiece model file on first use, from (in order)
`set_vocabulary_path()` (the entry points call it with the VOCABULARY_PATH gin macro), the
FLAN_JAX_VOCABULARY environment variable, or T5's public vocabulary on GCS. A converted
checkpoint therefore trains and evaluates with its own tokenizer by setting one macro.
"""
from __future__ import annotations

import os

import seqio

# T5's (and Flan-T5's) vocabulary: 32,000 pieces + 100 sentinel ids (padded to 32,128 rows).
T5_VOCABULARY_PATH = "gs://t5-data/vocabs/cc_all.32000/sentencepiece.model"
T5_EXTRA_IDS = 100

_configured_path: str | None = None


def set_vocabulary_path(path: str | None) -> None:
    """Chooses the SentencePiece model file of every ConfiguredVocabulary (None: default)."""
    global _configured_path
    if path is not None and "://" not in path and not os.path.isfile(path):
        raise FileNotFoundError(
            f"VOCABULARY_PATH={path!r} is not a file. Give the sentencepiece.model of the "
            "checkpoint you start from (e.g. the spiece.model of a Hugging Face T5 directory).")
    _configured_path = path


def vocabulary_path() -> str:
    return _configured_path or os.environ.get("FLAN_JAX_VOCABULARY") or T5_VOCABULARY_PATH


class ConfiguredVocabulary(seqio.Vocabulary):
    """A SentencePiece vocabulary whose model file is looked up when first needed."""

    def __init__(self, extra_ids: int = T5_EXTRA_IDS):
        super().__init__(extra_ids=extra_ids)
        self._resolved: seqio.SentencePieceVocabulary | None = None
        self._resolved_path: str | None = None

    @property
    def vocabulary(self) -> seqio.SentencePieceVocabulary:
        path = vocabulary_path()
        if self._resolved is None or self._resolved_path != path:
            if "://" not in path and not os.path.isfile(path):
                raise FileNotFoundError(
                    f"SentencePiece model {path!r} not found; set VOCABULARY_PATH (gin) or "
                    "FLAN_JAX_VOCABULARY to the checkpoint's sentencepiece.model.")
            self._resolved = seqio.SentencePieceVocabulary(path, extra_ids=self.extra_ids)
            self._resolved_path = path
        return self._resolved

    # seqio.Vocabulary's interface, delegated. SentencePieceVocabulary overrides the public
    # methods too (it folds the extra ids into its model), so forward those, not only the
    # abstract hooks.
    @property
    def vocab_size(self) -> int:
        return self.vocabulary.vocab_size

    def encode(self, s):
        return self.vocabulary.encode(s)

    def decode(self, ids):
        return self.vocabulary.decode(ids)

    def encode_tf(self, s):
        return self.vocabulary.encode_tf(s)

    def decode_tf(self, ids):
        return self.vocabulary.decode_tf(ids)

    @property
    def eos_id(self) -> int | None:
        return self.vocabulary.eos_id

    @property
    def unk_id(self) -> int | None:
        return self.vocabulary.unk_id

    @property
    def _base_vocab_size(self) -> int:
        return self.vocabulary._base_vocab_size  # pylint: disable=protected-access

    def _encode(self, s):
        return self.vocabulary._encode(s)  # pylint: disable=protected-access

    def _decode(self, ids):
        return self.vocabulary._decode(ids)  # pylint: disable=protected-access

    def _encode_tf(self, s):
        return self.vocabulary._encode_tf(s)  # pylint: disable=protected-access

    def _decode_tf(self, ids):
        return self.vocabulary._decode_tf(ids)  # pylint: disable=protected-access

    def __eq__(self, other) -> bool:
        return isinstance(other, ConfiguredVocabulary) and other.extra_ids == self.extra_ids

    def __hash__(self) -> int:
        return hash((type(self), self.extra_ids))
