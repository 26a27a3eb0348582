"""Test helpers shared by test files: a tiny random BERT on disk, a NumPy BERT forward pass, tiny AG News and
CoNLL-2003 files, and an assertion that two predictions give the same entities.

`write_tiny_bert_folder` writes what ``BertModel.save_pretrained`` would write
in PyTorch format (``model.safetensors`` with PyTorch tensor names, Linear
weights stored ``[out, in]``), without PyTorch. `numpy_bert_forward` is an
independent reference implementation of the BERT encoder to check TF models
against.
"""

import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import save_file
from scipy.special import erf


def tiny_bert_config(vocab_size, *, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                     max_position_embeddings=32):
    """Returns a BERT config.json dict for a tiny model."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "intermediate_size": intermediate_size,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": max_position_embeddings,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }


def tiny_bert_weights(config, *, seed=0, with_pooler=True):
    """Returns random float32 weights named as PyTorch's ``BertModel`` state dict.

    The scale (0.2, LayerNorm gains around 1) keeps attention and the FFN far
    from the identity so that a wrong transpose or mask changes the outputs.
    """
    rng = np.random.default_rng(seed)
    hidden, inner = config["hidden_size"], config["intermediate_size"]

    def normal(*shape):
        return rng.normal(0.0, 0.2, size=shape).astype(np.float32)

    def layer_norm(prefix):
        return {f"{prefix}.weight": 1.0 + normal(hidden) / 2, f"{prefix}.bias": normal(hidden)}

    def linear(prefix, n_in, n_out):
        return {f"{prefix}.weight": normal(n_out, n_in), f"{prefix}.bias": normal(n_out)}

    weights = {
        "embeddings.word_embeddings.weight": normal(config["vocab_size"], hidden),
        "embeddings.position_embeddings.weight": normal(config["max_position_embeddings"], hidden),
        "embeddings.token_type_embeddings.weight": normal(config["type_vocab_size"], hidden),
        "embeddings.position_ids": np.arange(config["max_position_embeddings"], dtype=np.int64)[None],
        **layer_norm("embeddings.LayerNorm"),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        for name in ("query", "key", "value"):
            weights.update(linear(f"{p}.attention.self.{name}", hidden, hidden))
        weights.update(linear(f"{p}.attention.output.dense", hidden, hidden))
        weights.update(layer_norm(f"{p}.attention.output.LayerNorm"))
        weights.update(linear(f"{p}.intermediate.dense", hidden, inner))
        weights.update(linear(f"{p}.output.dense", inner, hidden))
        weights.update(layer_norm(f"{p}.output.LayerNorm"))
    if with_pooler:
        weights.update(linear("pooler.dense", hidden, hidden))
    return weights


def write_tiny_bert_folder(path, vocab, *, seed=0, do_lower_case=True, with_pooler=True, **config_kwargs):
    """Writes a tiny random BERT as a PyTorch-format HF folder and returns its path.

    Args:
        path: str or os.PathLike. Folder to create (may exist).
        vocab: list of str. WordPiece vocabulary (BERT special tokens first); sets ``vocab_size``.
        seed: int. Seed of the random weights.
        do_lower_case: bool. Written to tokenizer_config.json.
        with_pooler: bool. Whether the checkpoint has ``pooler.dense`` weights.
        **config_kwargs: `tiny_bert_config` overrides (``hidden_size``, ``num_layers``, ...).

    Returns:
        str. The folder, holding config.json, vocab.txt, tokenizer_config.json
        and model.safetensors.
    """
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    config = tiny_bert_config(len(vocab), **config_kwargs)
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"do_lower_case": do_lower_case, "tokenizer_class": "BertTokenizer"}, f)
    save_file(tiny_bert_weights(config, seed=seed, with_pooler=with_pooler), os.path.join(path, "model.safetensors"),
              metadata={"format": "pt"})
    return path


def numpy_bert_forward(weights, config, input_ids, attention_mask, token_type_ids=None):
    """Runs the BERT encoder in float64 NumPy and returns the last hidden state.

    Embeddings (word + position + token type, LayerNorm), then per layer:
    multi-head self-attention with padded keys masked out, residual and
    LayerNorm, exact (erf) GELU feed-forward, residual and LayerNorm (post-LN).

    Args:
        weights: dict of str to np.ndarray. PyTorch BertModel tensor names
            (a ``bert.`` prefix is accepted); Linear weights are ``[out, in]``.
        config: dict. The model's config.json.
        input_ids: int array [batch, seq].
        attention_mask: 0/1 array [batch, seq].
        token_type_ids: int array [batch, seq], or None for all zeros.

    Returns:
        np.ndarray float64 [batch, seq, hidden_size].
    """
    w = {name.removeprefix("bert."): np.asarray(value, np.float64) for name, value in weights.items()}
    input_ids = np.asarray(input_ids)
    token_type_ids = np.zeros_like(input_ids) if token_type_ids is None else np.asarray(token_type_ids)
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]

    def layer_norm(x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w[f"{prefix}.weight"] + w[f"{prefix}.bias"]

    def dense(x, prefix):
        return x @ w[f"{prefix}.weight"].T + w[f"{prefix}.bias"]

    def split_heads(x):
        batch, seq, hidden = x.shape
        return x.reshape(batch, seq, heads, hidden // heads).transpose(0, 2, 1, 3)

    seq_len = input_ids.shape[1]
    x = (w["embeddings.word_embeddings.weight"][input_ids]
         + w["embeddings.position_embeddings.weight"][np.arange(seq_len)][None]
         + w["embeddings.token_type_embeddings.weight"][token_type_ids])
    x = layer_norm(x, "embeddings.LayerNorm")
    key_bias = np.where(np.asarray(attention_mask)[:, None, None, :] > 0, 0.0, -1e9)
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        q, k, v = (split_heads(dense(x, f"{p}.attention.self.{name}")) for name in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + key_bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = layer_norm(dense(context, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        inner = dense(x, f"{p}.intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))
        x = layer_norm(dense(inner, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    return x


AG_NEWS_CLASS_NAMES = ["World", "Sports", "Business", "Sci/Tech"]
TOPIC_WORDS = [["minister", "election", "embassy", "troops", "president"],
               ["goal", "match", "coach", "striker", "cup"],
               ["stocks", "profit", "market", "shares", "bank"],
               ["software", "internet", "chip", "space", "computer"]]


def write_csv(path, rows):
    """Writes rows as AG News does: every field quoted."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)


def topic_rows(count, seed):
    """``count`` AG News rows cycling over the 4 classes, each with three words of its topic."""
    rng = np.random.RandomState(seed)
    rows = []
    for i in range(count):
        words = rng.choice(TOPIC_WORDS[i % 4], size=3, replace=False)
        rows.append([str(i % 4 + 1), f"{words[0].title()} report", " ".join(words) + " today, officials said."])
    return rows


# The vocabulary of `conftest.topic_bert`: the topic words, the rows' other words, "café" in pieces.
TOPIC_VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "'", "!", "report", "today", "officials",
                "said", "the", "a", "in", "##s", "##ing", "caf", "##e"]
               + [word for words in TOPIC_WORDS for word in words])


def ag_news_rows():
    """``(train, test)`` rows of `conftest.ag_news_root`: `topic_rows` (48 and 16), with an empty title, quotes and
    commas, and a non-English text among the training rows."""
    train = topic_rows(48, seed=0)
    train[5] = ["2", "", "Empty title, \"quoted\" goal in the cup"]
    train[6] = ["3", "Börse", "Aktien und shares: le marché a progressé de 2 %"]
    return train, topic_rows(16, seed=1)


def write_ag_news_folder(root, train_rows, test_rows):
    """Writes ``<root>/ag_news/{train,test}.csv`` and ``classes.txt``; returns ``root`` as a str."""
    folder = os.path.join(root, "ag_news")
    os.makedirs(folder, exist_ok=True)
    write_csv(os.path.join(folder, "train.csv"), train_rows)
    write_csv(os.path.join(folder, "test.csv"), test_rows)
    with open(os.path.join(folder, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(AG_NEWS_CLASS_NAMES) + "\n")
    return str(root)


# Tiny CoNLL-2003 sentences: the tags of every type, words of `conftest.TINY_VOCAB` (some in capitals, split into
# pieces, or unknown).
CONLL_SENTENCES = [
    [("John", "B-PER"), ("lives", "O"), ("in", "O"), ("New", "B-LOC"), ("York", "I-LOC"), (".", "O")],
    [("The", "O"), ("cat", "O"), ("sat", "O"), ("on", "O"), ("the", "O"), ("mat", "O"), ("!", "O")],
    [("Hello", "O"), ("John", "B-PER"), (",", "O"), ("the", "O"), ("dog", "O"), ("lives", "O"), ("in", "O"),
     ("York", "B-LOC"), (".", "O")],
    [("NEW", "B-ORG"), ("YORK", "I-ORG"), ("-", "O"), ("Unaffable", "B-MISC"), ("dogs", "O"), ("running", "O")],
    [("John", "B-PER"), ("sat", "O"), ("on", "O"), ("the", "O"), ("mat", "O"), ("in", "O"), ("New", "B-LOC"),
     ("York", "I-LOC"), (".", "O")],
]


def write_conll(path, documents):
    """Writes documents (lists of sentences of (word, tag)) as a CoNLL-2003 column file."""
    with open(path, "w", encoding="utf-8") as f:
        for sentences in documents:
            f.write("-DOCSTART- -X- -X- O\n\n")
            for sentence in sentences:
                f.writelines(f"{word} NNP B-NP {tag}\n" for word, tag in sentence)
                f.write("\n")


def write_conll_folder(root):
    """``<root>/conll2003/{train,valid,test}.txt``: documents of `CONLL_SENTENCES` (train: 12 documents, 60
    sentences; validation 7 sentences, test 5); returns ``root`` as a str."""
    folder = os.path.join(root, "conll2003")
    os.makedirs(folder, exist_ok=True)
    sentences = CONLL_SENTENCES
    write_conll(os.path.join(folder, "train.txt"), [sentences[i:] + sentences[:i] for i in range(5)] * 2 +
                [sentences] * 2)
    write_conll(os.path.join(folder, "valid.txt"), [sentences[::-1], sentences[1:3]])
    write_conll(os.path.join(folder, "test.txt"), [sentences[2:], sentences[:2]])
    return str(root)


def run_fresh_python(code, *args, cwd, env=None):
    """Runs ``code`` in a fresh interpreter; the repository is not on its path unless ``env`` puts it there."""
    full_env = {**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], cwd=cwd, env=full_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def assert_same_entities(actual, expected, *, atol=1e-4, compare_words=True, context=""):
    """Asserts that two lists (one per text) of entity dicts (HF pipeline fields) agree: the same groups and
    offsets (and ``word`` if ``compare_words``), in the same order, and scores within ``atol``."""
    keys = ("entity_group", "start", "end") + (("word",) if compare_words else ())
    assert len(actual) == len(expected), f"{context}: {len(actual)} texts against {len(expected)}"
    for index, (got, want) in enumerate(zip(actual, expected)):
        spans = [tuple(entity[key] for key in keys) for entity in got]
        assert spans == [tuple(entity[key] for key in keys) for entity in want], f"{context}: text {index}"
        assert [entity["score"] for entity in got] == pytest.approx([entity["score"] for entity in want], abs=atol), (
            f"{context}: text {index}: scores")
