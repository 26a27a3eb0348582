"""Tests of tfnlp.pretrained: safetensors -> TF conversion cache, model builders, NumPy reference forward pass.

Every test runs with the network blocked (`block_network`) and fails if
anything tried to connect, except the Hub tests, which expect and check it.
"""

import json
import os
import socket

import tfnlp  # noqa: F401  (selects Keras 2 before TensorFlow is imported)

import huggingface_hub
import numpy as np
import pytest
import transformers
from safetensors.numpy import load_file, save_file

from conftest import TINY_VOCAB
from helpers import numpy_bert_forward, write_tiny_bert_folder
from tfnlp import pretrained

TINY_SENTENCES = [
    ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"],
    ["[CLS]", "john", "lives", "in", "new", "york", "[SEP]", "hello", "[SEP]"],
    ["[CLS]", "dog", "##s", "run", "##ning", "[SEP]"],
]
MINILM_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Attention is all you need.",
    "Transformers process every token of a sentence in parallel, unlike recurrent networks.",
]


@pytest.fixture(autouse=True)
def block_network(monkeypatch):
    """Makes every connection or DNS look-up fail, records the attempts, and checks there were none."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise socket.gaierror("network blocked in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts
    assert not attempts, f"the network was used: {attempts}"


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "cache")


@pytest.fixture
def count_conversions(monkeypatch):
    """Counts the calls of the safetensors -> TF conversion."""
    calls = []
    convert = pretrained._convert

    def counting_convert(*args):
        calls.append(args)
        return convert(*args)

    monkeypatch.setattr(pretrained, "_convert", counting_convert)
    return calls


def _tiny_batch():
    """Padded input_ids, attention_mask and token_type_ids of TINY_SENTENCES (the second is a pair)."""
    seq_len = max(len(s) for s in TINY_SENTENCES)
    ids = np.zeros((len(TINY_SENTENCES), seq_len), np.int32)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, tokens in enumerate(TINY_SENTENCES):
        ids[row, :len(tokens)] = [TINY_VOCAB.index(t) for t in tokens]
        mask[row, :len(tokens)] = 1
    types[1, 7:9] = 1
    return ids, mask, types


def _max_difference_on_tokens(model, weights_file, config_file, ids, mask, types):
    """Max |TF last_hidden_state - NumPy reference| over the non-padded positions."""
    tf_out = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state.numpy()
    with open(config_file, encoding="utf-8") as f:
        config = json.load(f)
    np_out = numpy_bert_forward(load_file(weights_file), config, ids, mask, types)
    assert tf_out.shape == np_out.shape
    return float(np.abs(tf_out - np_out)[mask.astype(bool)].max())


def _entries(cache_dir):
    return sorted(os.listdir(os.path.join(cache_dir, "bert")))


def test_safetensors_folder_is_converted_into_the_cache(tiny_bert_dir, cache_dir):
    folder = pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)

    assert os.path.dirname(folder) == os.path.join(cache_dir, "bert")
    assert os.path.basename(folder).startswith("tiny_bert-")
    for name in ("config.json", "tf_model.h5", "vocab.txt", "tokenizer_config.json"):
        assert os.path.isfile(os.path.join(folder, name)), name
    assert not os.path.exists(os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "tfnlp_conversion.json"), encoding="utf-8") as f:
        assert json.load(f)["source"] == tiny_bert_dir


def test_cache_entry_is_reused_without_converting_again(tiny_bert_dir, cache_dir, count_conversions):
    first = pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)
    mtime = os.stat(os.path.join(first, "tf_model.h5")).st_mtime_ns
    second = pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)

    assert second == first
    assert len(count_conversions) == 1
    assert os.stat(os.path.join(second, "tf_model.h5")).st_mtime_ns == mtime


def test_changed_weights_are_converted_into_a_new_entry(tiny_bert_dir, cache_dir, count_conversions):
    first = pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)
    write_tiny_bert_folder(tiny_bert_dir, TINY_VOCAB, seed=1)
    second = pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)

    assert second != first
    assert len(count_conversions) == 2
    assert _entries(cache_dir) == sorted(os.path.basename(p) for p in (first, second))


def test_interrupted_conversion_leaves_no_cache_entry(tiny_bert_dir, cache_dir, monkeypatch):
    def interrupted_save(model, folder, **kwargs):
        with open(os.path.join(folder, "tf_model.h5"), "wb") as f:
            f.write(b"\x89HDF\r\n")  # A truncated file, then Ctrl-C.
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(transformers.TFBertModel, "save_pretrained", interrupted_save)
        with pytest.raises(KeyboardInterrupt):
            pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)
    assert _entries(cache_dir) == []

    folder = pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)
    assert _entries(cache_dir) == [os.path.basename(folder)]
    assert os.path.getsize(os.path.join(folder, "tf_model.h5")) > 1000


def test_folder_with_tf_weights_is_used_as_is(tiny_bert_dir, cache_dir, count_conversions):
    converted = pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)

    assert pretrained.resolve_pretrained(converted, cache_dir=cache_dir) == converted
    assert len(count_conversions) == 1


def test_pickled_weights_are_refused_without_being_read(tmp_path, cache_dir):
    folder = tmp_path / "bin_only"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "pytorch_model.bin").write_bytes(b"not a pickle: reading it would fail differently")

    with pytest.raises(ValueError, match="pytorch_model.bin.*never unpickles"):
        pretrained.resolve_pretrained(str(folder), cache_dir=cache_dir)


@pytest.mark.parametrize("problem, error, message", [
    ("no_folder", FileNotFoundError, "not a folder"),
    ("no_config", FileNotFoundError, "no config.json"),
    ("not_bert", ValueError, "model_type is 'roberta', expected 'bert'"),
    ("no_weights", FileNotFoundError, "no model weights"),
])
def test_unusable_local_sources_raise_clear_errors(tiny_bert_dir, cache_dir, problem, error, message):
    config_file = os.path.join(tiny_bert_dir, "config.json")
    if problem == "no_folder":
        tiny_bert_dir = os.path.join(tiny_bert_dir, "missing")
    elif problem == "no_config":
        os.remove(config_file)
    elif problem == "not_bert":
        with open(config_file, "w", encoding="utf-8") as f:
            json.dump({"model_type": "roberta"}, f)
    else:
        os.remove(os.path.join(tiny_bert_dir, "model.safetensors"))

    with pytest.raises(error, match=message):
        pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)


def test_tiny_tf_model_matches_numpy_forward_pass(tiny_bert_dir, cache_dir):
    model = pretrained.load_bert_model(tiny_bert_dir, cache_dir=cache_dir)

    difference = _max_difference_on_tokens(
        model, os.path.join(tiny_bert_dir, "model.safetensors"), os.path.join(tiny_bert_dir, "config.json"),
        *_tiny_batch())
    assert difference <= 1e-4


def test_embedding_matrices_are_the_checkpoint_tables(tiny_bert_dir, cache_dir):
    tables = pretrained.load_embedding_matrices(tiny_bert_dir, cache_dir=cache_dir)

    weights = load_file(os.path.join(tiny_bert_dir, "model.safetensors"))
    expected = {
        "word_embeddings": weights["embeddings.word_embeddings.weight"],
        "position_embeddings": weights["embeddings.position_embeddings.weight"],
        "layer_norm_gamma": weights["embeddings.LayerNorm.weight"],
        "layer_norm_beta": weights["embeddings.LayerNorm.bias"],
    }
    assert sorted(tables) == sorted(expected)
    for name, array in expected.items():
        assert isinstance(tables[name], np.ndarray) and tables[name].dtype == np.float32, name
        np.testing.assert_array_equal(tables[name], array, err_msg=name)
    assert tables["word_embeddings"].shape == (len(TINY_VOCAB), 32)


def test_head_model_checkpoint_without_pooler_converts(tmp_path, cache_dir):
    """Names of a PyTorch BertFor* checkpoint ("bert." prefix, extra "cls." tensors) and no pooler."""
    folder = write_tiny_bert_folder(tmp_path / "head_model", TINY_VOCAB, with_pooler=False)
    weights_file = os.path.join(folder, "model.safetensors")
    weights = {f"bert.{name}": value for name, value in load_file(weights_file).items()}
    weights["cls.predictions.bias"] = np.zeros(len(TINY_VOCAB), np.float32)
    save_file(weights, weights_file, metadata={"format": "pt"})

    model = pretrained.load_bert_model(folder, cache_dir=cache_dir)

    difference = _max_difference_on_tokens(model, weights_file, os.path.join(folder, "config.json"), *_tiny_batch())
    assert difference <= 1e-4


def test_sequence_classification_model_has_the_labels(tiny_bert_dir, cache_dir):
    labels = ["World", "Sports", "Business", "Sci/Tech"]
    model = pretrained.load_bert_for_sequence_classification(tiny_bert_dir, labels=labels, cache_dir=cache_dir)
    ids, mask, types = _tiny_batch()

    logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits

    assert logits.shape == (len(TINY_SENTENCES), 4)
    assert model.config.id2label == {0: "World", 1: "Sports", 2: "Business", 3: "Sci/Tech"}
    assert model.config.label2id == {"World": 0, "Sports": 1, "Business": 2, "Sci/Tech": 3}
    pretrained_embeddings = load_file(os.path.join(tiny_bert_dir, "model.safetensors"))
    np.testing.assert_array_equal(model.bert.embeddings.weight.numpy(),
                                  pretrained_embeddings["embeddings.word_embeddings.weight"])


def test_token_classification_model_has_the_labels(tiny_bert_dir, cache_dir):
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    model = pretrained.load_bert_for_token_classification(tiny_bert_dir, labels=labels, cache_dir=cache_dir)
    ids, mask, types = _tiny_batch()

    logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits

    assert logits.shape == (*ids.shape, 5)
    assert model.config.num_labels == 5
    assert model.config.id2label[3] == "B-LOC"
    assert model.config.label2id["I-PER"] == 2


@pytest.mark.parametrize("labels, message", [([], "non-empty"), (["O", "B-PER", "O"], r"repeated: \['O'\]")])
def test_invalid_labels_are_refused(tiny_bert_dir, cache_dir, labels, message):
    with pytest.raises(ValueError, match=message):
        pretrained.load_bert_for_token_classification(tiny_bert_dir, labels=labels, cache_dir=cache_dir)


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_tokenizer_files_reads_vocab_and_casing(tmp_path, do_lower_case):
    folder = write_tiny_bert_folder(tmp_path / "bert", TINY_VOCAB, do_lower_case=do_lower_case)

    vocab_file, lower = pretrained.tokenizer_files(folder)

    assert vocab_file == os.path.join(folder, "vocab.txt")
    assert lower is do_lower_case


def test_tokenizer_files_defaults_to_uncased(tiny_bert_dir):
    os.remove(os.path.join(tiny_bert_dir, "tokenizer_config.json"))

    assert pretrained.tokenizer_files(tiny_bert_dir).do_lower_case is True


def _fake_hub_cache(root, repo_id, files_from):
    """Lays out ``files_from``'s files as a cached Hub snapshot of ``repo_id`` (what an earlier download leaves)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = os.path.join(root, "models--" + repo_id.replace("/", "--"))
    os.makedirs(os.path.join(repo, "refs"))
    with open(os.path.join(repo, "refs", "main"), "w", encoding="utf-8") as f:
        f.write(commit)
    snapshot = os.path.join(repo, "snapshots", commit)
    os.makedirs(snapshot)
    for name in os.listdir(files_from):
        os.link(os.path.join(files_from, name), os.path.join(snapshot, name))
    return snapshot


@pytest.mark.parametrize("weights", ["tf_model.h5", "model.safetensors"])
def test_hub_name_offline_uses_the_hf_cache(tiny_bert_dir, tmp_path, cache_dir, monkeypatch, block_network, weights):
    hub_cache = str(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", hub_cache)
    if weights == "tf_model.h5":
        tiny_bert_dir = pretrained.resolve_pretrained(tiny_bert_dir, cache_dir=cache_dir)
    snapshot = _fake_hub_cache(hub_cache, "someone/tiny-bert", tiny_bert_dir)

    folder = pretrained.resolve_pretrained("someone/tiny-bert", cache_dir=cache_dir)

    assert block_network, "the Hub was not tried first"
    block_network.clear()
    if weights == "tf_model.h5":
        assert folder == snapshot
    else:
        assert os.path.basename(folder).startswith("someone--tiny-bert-")
    assert os.path.isfile(os.path.join(folder, "tf_model.h5"))


@pytest.mark.parametrize("function", [pretrained.resolve_pretrained, pretrained.tokenizer_files])
def test_hub_name_offline_and_not_cached_is_a_one_line_error(tmp_path, monkeypatch, block_network, function):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty_hub_cache"))

    with pytest.raises(OSError, match="'bert-base-cased' is not a local folder and the Hugging Face Hub") as error:
        function("bert-base-cased")

    assert "\n" not in str(error.value)
    assert block_network, "the Hub was not tried"
    block_network.clear()


@pytest.mark.integration
def test_packaged_minilm_tokenizer_files():
    vocab_file, do_lower_case = pretrained.tokenizer_files()

    assert vocab_file == os.path.join(pretrained.packaged_model_dir(), "vocab.txt")
    assert do_lower_case is True
    with open(vocab_file, encoding="utf-8") as f:
        assert sum(1 for _ in f) == 30522


@pytest.mark.integration
def test_packaged_minilm_matches_numpy_forward_pass(cache_dir):
    source = pretrained.packaged_model_dir()
    model = pretrained.load_bert_model(cache_dir=cache_dir)
    tokenizer = transformers.BertTokenizer(os.path.join(source, "vocab.txt"), do_lower_case=True)
    batch = tokenizer(MINILM_SENTENCES, padding=True, return_tensors="np")

    difference = _max_difference_on_tokens(
        model, os.path.join(source, "model.safetensors"), os.path.join(source, "config.json"),
        batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])

    assert batch["attention_mask"].min() == 0  # The batch is padded.
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert difference <= 1e-4
