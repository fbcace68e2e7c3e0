"""ConfiguredVocabulary resolves its SentencePiece file at first use, from the configured path."""
import pytest
import sentencepiece as spm

from flan_jax import vocabularies

TEXT = ["the quick brown fox jumps over the lazy dog", "instruction tuning with templates",
        "options yes no maybe", "translate english to toy language"] * 50


@pytest.fixture
def spm_path(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXT))
    prefix = tmp_path / "toy"
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), vocab_size=40,
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    yield str(prefix) + ".model"
    vocabularies.set_vocabulary_path(None)


def test_path_set_after_construction_is_used(spm_path):
    vocab = vocabularies.ConfiguredVocabulary(extra_ids=10)  # as a task registers it
    vocabularies.set_vocabulary_path(spm_path)
    ids = vocab.encode("the lazy fox")
    assert ids and vocab.decode(ids) == "the lazy fox"
    assert vocab.vocab_size == 40 + 10 and vocab.eos_id == 1
    assert vocab.decode_tf(vocab.encode_tf("yes no")).numpy().decode() == "yes no"


def test_missing_vocabulary_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="VOCABULARY_PATH=.*is not a file"):
        vocabularies.set_vocabulary_path(str(tmp_path / "missing.model"))


def test_default_is_t5s_public_vocabulary(monkeypatch):
    monkeypatch.delenv("FLAN_JAX_VOCABULARY", raising=False)
    vocabularies.set_vocabulary_path(None)
    assert vocabularies.vocabulary_path() == vocabularies.T5_VOCABULARY_PATH
    monkeypatch.setenv("FLAN_JAX_VOCABULARY", "/some/spiece.model")
    assert vocabularies.vocabulary_path() == "/some/spiece.model"
