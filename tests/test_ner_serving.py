"""NER serving: in-graph grouping against HF's own code, the predictor against HF's pipeline, bad input, the export.

The model is a tiny random BERT (`TINY_VOCAB`) whose classifier weights are set
so that every CoNLL tag family and both B- and I- labels occur; each test
asserts that its inputs really exercise what it compares. The fresh-process
reload of the valid-IOB export is in the large tier (`make test-all`): the NER
pipeline's tiny run reloads its export, which decodes valid IOB, the same way.
"""

import collections
import json
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
from transformers import BertTokenizerFast, TokenClassificationPipeline, pipeline

from helpers import assert_same_entities, run_fresh_python
from tfnlp import pretrained
from tfnlp.data import CONLL2003_LABELS
from tfnlp.data.ner_features import NerPreprocessor
from tfnlp.models.bert_token_classifier import build_bert_token_classifier, token_classifier_model
from tfnlp.serving.export import export_token_classifier
from tfnlp.serving.ner_predictor import NerPredictor, hf_pipeline_entities
from tfnlp.serving.op_audit import audit_saved_model
from tfnlp.serving.token_classifier_module import TokenClassifierModule
from tfnlp.tagging.entity_grouping import group_entities
from tfnlp.tagging.iob import decode_tags, inside_label_ids, iob_transitions
from tfnlp.tagging.iob_decoding import iob_piece_labels, viterbi_decode, word_starts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["John lives in New York.", "the cat sat on the mat!", "Unaffable dogs running, hello world",
         "ünaffable 東京 cat", "new york new york john john", "a-b.c,d!John", "Hello   World\tNew\nYork"]
BAD_TEXTS = ["", "   \n\t ", "\u00ad\u200b", "Москва и 東京 🙂 ∰ ☃", "ÀÉÎÕÜ ñ ß ﬁ ½", "john\x00lives\ufffd"]
MAX_LENGTH = 32  # The tiny BERT's position embeddings.


def make_tiny_model(folder, seed=4, casing=False):
    """A tiny random BERT token classifier whose predictions mix tags, B- and I- labels and O."""
    bert = build_bert_token_classifier(folder, labels=CONLL2003_LABELS, casing=casing)
    rng = np.random.default_rng(seed)
    kernel, bias = bert.classifier.weights
    kernel.assign(rng.normal(size=kernel.shape) * 3.0)
    bias.assign([1.5, 0, 0.5, 0, 0.5, 0, 0.5, 0, 0.5])
    if casing:  # Distinct casing rows, so the casing changes the predictions.
        table = bert.bert.embeddings.token_type_embeddings
        table.assign(table.numpy() + rng.normal(size=table.shape) * 2.0)
    return bert, token_classifier_model(bert)


@pytest.fixture(scope="module")
def tiny(tiny_bert):
    bert, model = make_tiny_model(tiny_bert)
    preprocessor = NerPreprocessor.from_pretrained(tiny_bert, max_length=MAX_LENGTH, stride=10)
    return bert, model, preprocessor, NerPredictor.from_model(model, preprocessor)


@pytest.fixture(scope="module")
def hf_pipeline(tiny, tiny_bert):
    tokenizer = BertTokenizerFast.from_pretrained(pretrained.resolve_pretrained(tiny_bert))
    return pipeline("token-classification", model=tiny[0], tokenizer=tokenizer, aggregation_strategy="simple",
                    framework="tf", dtype=None)


def hf_group_entities(labels, scores, starts, ends, tokenizer):
    """HF's TokenClassificationPipeline.group_entities on per-token entities, "O" groups dropped (its postprocess)."""
    grouper = TokenClassificationPipeline.__new__(TokenClassificationPipeline)  # Only its grouping methods are used.
    grouper.tokenizer = tokenizer
    entities = [{"entity": label, "score": np.float32(score), "word": "x", "start": start, "end": end}
                for label, score, start, end in zip(labels, scores, starts, ends)]
    groups = grouper.group_entities(entities) if entities else []
    return [(g["entity_group"], g["start"], g["end"], float(g["score"])) for g in groups if g["entity_group"] != "O"]


@pytest.mark.parametrize("labels", [CONLL2003_LABELS, ("O", "PER", "B-LOC", "I-LOC", "I-MISC")])
def test_group_entities_equals_hf_grouping(tiny_vocab_file, labels):
    tokenizer = BertTokenizerFast(vocab_file=tiny_vocab_file)
    rng = np.random.default_rng(0)
    lengths = [0, 1, 2, 7, 30, 30, 30]
    label_ids = [rng.integers(0, len(labels), size=n) for n in lengths]
    scores = [rng.uniform(0.2, 1.0, size=n).astype(np.float32) for n in lengths]
    starts = [np.cumsum(rng.integers(1, 4, size=n)) for n in lengths]
    ends = [s + rng.integers(1, 3, size=len(s)) for s in starts]
    ragged = {name: tf.ragged.constant([list(v) for v in values], dtype)
              for name, values, dtype in (("ids", label_ids, tf.int32), ("scores", scores, tf.float32),
                                          ("starts", starts, tf.int64), ("ends", ends, tf.int64))}
    groups = group_entities(ragged["ids"], ragged["scores"], ragged["starts"], ragged["ends"], labels)
    groups = {key: value.to_list() for key, value in groups.items()}
    total = 0
    for row in range(len(lengths)):
        expected = hf_group_entities([labels[i] for i in label_ids[row]], scores[row], starts[row], ends[row],
                                     tokenizer)
        got = [(g.decode(), s, e, c) for g, s, e, c in zip(groups["entity_group"][row], groups["start"][row],
                                                            groups["end"][row], groups["score"][row])]
        assert [g[:3] for g in got] == [e[:3] for e in expected]
        np.testing.assert_allclose([g[3] for g in got], [e[3] for e in expected], atol=1e-6)
        total += len(expected)
    assert total > 20  # The random labels form many groups, multi-token ones among them.


@pytest.mark.large  # make test compares with HF's pipeline in the tiny NER run (hf_pipeline_parity).
def test_predictor_equals_hf_pipeline(tiny, hf_pipeline):
    _, _, _, predictor = tiny
    expected = hf_pipeline_entities(hf_pipeline, TEXTS + BAD_TEXTS)
    ours = predictor(TEXTS + BAD_TEXTS)
    assert_same_entities(ours, expected, atol=1e-4, compare_words=False, context="predictor vs HF pipeline")
    # The comparison covers several tags, B- and I- labels, and multi-token groups.
    found = [e for row in ours for e in row]
    assert len({e["entity_group"] for e in found}) >= 3
    outputs = predictor.raw_outputs(TEXTS)
    labels = {label[:2] for row, n in zip(outputs["token_label"], outputs["num_tokens"]) for label in row[:n]}
    assert {b"B-", b"I-", b"O"} <= labels
    assert sum(e["end"] - e["start"] > 8 for e in found) >= 3
    # Ours is the text's own characters; HF's the decoded (lower-cased) pieces.
    for text, row in zip(TEXTS + BAD_TEXTS, ours):
        assert all(e["word"] == text[e["start"]:e["end"]] for e in row)


def test_signature_outputs_follow_the_contract(tiny):
    module = tiny[3].module
    outputs = module.serving_default(tf.constant(TEXTS + BAD_TEXTS))
    expected = {"entity_group": tf.string, "score": tf.float32, "word": tf.string, "start": tf.int64,
                "end": tf.int64, "num_entities": tf.int64, "token_label": tf.string, "token_score": tf.float32,
                "token_start": tf.int64, "token_end": tf.int64, "num_tokens": tf.int64, "truncated": tf.bool}
    assert {key: value.dtype for key, value in outputs.items()} == expected
    outputs = {key: value.numpy() for key, value in outputs.items()}
    batch = len(TEXTS + BAD_TEXTS)
    assert outputs["truncated"].shape == (batch,) and not outputs["truncated"].any()  # All short.
    for key in ("entity_group", "score", "word", "start", "end"):
        assert outputs[key].shape == (batch, outputs["num_entities"].max())
    for key in ("token_label", "token_score", "token_start", "token_end"):
        assert outputs[key].shape == (batch, outputs["num_tokens"].max())
    for row in range(batch):  # Padding past the counts.
        assert (outputs["entity_group"][row, outputs["num_entities"][row]:] == b"").all()
        assert (outputs["token_label"][row, outputs["num_tokens"][row]:] == b"").all()
    empty = module.serving_default(tf.constant([], tf.string))
    assert empty["entity_group"].shape[0] == 0 and empty["num_tokens"].shape == (0,)


def check_offsets(text, outputs, row, tokenizer):
    """Tokens: exactly HF's pieces and offsets (nothing cut, nothing twice); entities: slices of the text."""
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    count = int(outputs["num_tokens"][row])
    assert count == len(encoding["input_ids"])
    spans = list(zip(outputs["token_start"][row, :count].tolist(), outputs["token_end"][row, :count].tolist()))
    assert spans == [tuple(span) for span in encoding["offset_mapping"]]
    for i in range(int(outputs["num_entities"][row])):
        start, end = int(outputs["start"][row, i]), int(outputs["end"][row, i])
        assert 0 <= start < end <= len(text)
        assert outputs["word"][row, i].decode("utf-8") == text[start:end]


def test_bad_and_long_input_has_right_offsets(tiny, tiny_bert):
    """Empty, blank, invisible, non-Latin, unknown characters, and 20,000 characters read in overlapping windows."""
    long_text = ("John lives in New York, the cat sat on the mat! Москва 東京 " * 400)[:20_000]
    texts = BAD_TEXTS + [long_text]
    _, model, preprocessor, _ = tiny
    outputs = NerPredictor.from_model(model, preprocessor, max_pieces=None).raw_outputs(texts)  # Read whole.
    tokenizer = BertTokenizerFast.from_pretrained(pretrained.resolve_pretrained(tiny_bert))
    for row, text in enumerate(texts):
        check_offsets(text, outputs, row, tokenizer)
    assert outputs["num_tokens"][0] == outputs["num_tokens"][1] == outputs["num_entities"][0] == 0
    assert outputs["num_tokens"][-1] > 20 * MAX_LENGTH  # Many windows.
    assert outputs["token_end"][-1].max() == len(long_text.rstrip())  # The last piece is predicted too.
    assert outputs["num_entities"][-1] > 100
    assert not outputs["truncated"].any()


def test_a_text_longer_than_max_pieces_is_read_up_to_there_and_marked_truncated(tiny):
    """The cap on the pieces read per text: a longer text keeps its first max_pieces pieces (their spans as read
    whole), is marked truncated and costs fewer windows; a text of exactly max_pieces pieces is not cut."""
    _, model, preprocessor, _ = tiny
    sentence = "john lives in new york . "  # 6 pieces.
    texts = [sentence * 20, sentence * 5, "hello world", ""]  # 120, 30, 2 and 0 pieces.
    runs = {}
    for max_pieces in (None, 30):
        counting = WindowCounter(model)
        module = TokenClassifierModule(counting, preprocessor, max_pieces=max_pieces)
        runs[max_pieces] = NerPredictor(module.serving_default).raw_outputs(texts), int(counting.windows)
    (whole, whole_windows), (capped, capped_windows) = runs[None], runs[30]
    assert whole["num_tokens"].tolist() == [120, 30, 2, 0] and not whole["truncated"].any()
    assert capped["truncated"].tolist() == [True, False, False, False]
    assert capped["num_tokens"].tolist() == [30, 30, 2, 0]
    for key in ("token_start", "token_end"):  # The first 30 pieces, as read whole.
        np.testing.assert_array_equal(capped[key][0, :30], whole[key][0, :30])
    assert capped["end"][0, :capped["num_entities"][0]].max() <= capped["token_end"][0, 29]
    # Texts within the cap: the same answers.
    np.testing.assert_array_equal(capped["num_entities"][1:], whole["num_entities"][1:])
    np.testing.assert_array_equal(capped["token_label"][1:], whole["token_label"][1:, :30])
    np.testing.assert_allclose(capped["token_score"][1:], whole["token_score"][1:, :30], atol=1e-5)
    # What the model ran on (windows of 30 pieces, stride 10): read whole, the long text takes
    # ceil((120 - 30) / 20) + 1 = 6 windows, capped one; the other three texts one each.
    assert (whole_windows, capped_windows) == (6 + 3, 1 + 3)
    with pytest.raises(ValueError, match="max_pieces"):
        TokenClassifierModule(model, preprocessor, max_pieces=0)


class WindowCounter(tf.Module):
    """A token classifier that counts the windows it is run on."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.windows = tf.Variable(0)

    def __call__(self, inputs, training=False):
        self.windows.assign_add(tf.shape(inputs["input_ids"])[0])
        return self.model(inputs, training=training)


def test_long_text_takes_each_piece_from_its_window_with_most_context(tiny):
    """A piece deep inside a long text is predicted as inside any window around it: the same as alone in one."""
    _, model, preprocessor, predictor = tiny
    sentence = "john lives in new york . "
    long_text = sentence * 40
    outputs = predictor.raw_outputs([long_text, sentence * 3])
    # Piece 36..53 of the long text (windows of 30 pieces, stride 10) and the 3-sentence text alone (18 pieces):
    # not equal in general (different context), but every label is a valid label and scores are probabilities.
    assert set(outputs["token_label"][0][:outputs["num_tokens"][0]]) <= {label.encode() for label in CONLL2003_LABELS}
    scores = outputs["token_score"][0][:outputs["num_tokens"][0]]
    assert (scores >= 1 / 9 - 1e-6).all() and (scores <= 1).all()
    # The same text twice in one batch gives the same result as alone (padding of other windows is masked).
    alone = predictor.raw_outputs([long_text])
    np.testing.assert_allclose(alone["token_score"][0], outputs["token_score"][0][:alone["token_score"].shape[1]],
                               atol=1e-5)


@pytest.mark.large  # make test reloads the tiny NER run's export without tfnlp (test_ner_pipeline).
def test_export_reloads_without_tfnlp_and_gives_the_predictors_entities(tiny, tmp_path):
    _, model, preprocessor, predictor = tiny
    texts = TEXTS + BAD_TEXTS + ["John lives in New York. " * 300]
    result = export_token_classifier(predictor.module, str(tmp_path / "conll_ner"), smoke_texts=texts[:4])
    assert result["path"] == str(tmp_path / "conll_ner" / "1")
    assert os.path.isfile(os.path.join(result["path"], "assets", "vocab.txt"))
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    stdout = run_fresh_python("""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
        texts = json.load(open(sys.argv[2], encoding="utf-8"))
        outputs = {k: v.numpy() for k, v in signature(text=tf.constant(texts)).items()}
        entities = [[{"entity_group": outputs["entity_group"][r, i].decode(), "score": float(outputs["score"][r, i]),
                      "word": outputs["word"][r, i].decode(), "start": int(outputs["start"][r, i]),
                      "end": int(outputs["end"][r, i])} for i in range(int(outputs["num_entities"][r]))]
                    for r in range(len(texts))]
        assert not any(name == "tfnlp" or name.startswith("tfnlp.") for name in sys.modules)
        print(json.dumps([entities, outputs["truncated"].tolist()]))
    """, result["path"], texts_file, cwd=str(tmp_path))
    reloaded, truncated = json.loads(stdout.strip().splitlines()[-1])
    expected = predictor(texts)
    assert_same_entities(reloaded, expected, atol=1e-5, context="fresh-process reload vs predictor")
    assert sum(map(len, expected)) > 150
    assert truncated == [False] * (len(texts) - 1) + [True]  # 1,800 pieces: read up to DEFAULT_MAX_PIECES.
    # The cap keeps the graph to ops every model server since 2.12.0 has (core and tensorflow-text's ops_lib).
    audit = audit_saved_model(result["path"])
    assert audit.ok and str(audit.minimum_release()) == "2.12.0 or older", audit.to_dict()


@pytest.mark.large  # An option variant (--casing) of the export; its run is the large tier's too.
def test_casing_is_computed_in_the_export(tiny_bert, tmp_path):
    """A casing model sees "JOHN" and "john" differently (same uncased ids); the export keeps that."""
    _, model = make_tiny_model(tiny_bert, casing=True)
    preprocessor = NerPreprocessor.from_pretrained(tiny_bert, max_length=MAX_LENGTH, casing=True)
    module = TokenClassifierModule(model, preprocessor)
    texts = ["JOHN LIVES IN NEW YORK", "john lives in new york", "John Lives In New York"]
    in_memory = NerPredictor(module.serving_default).raw_outputs(texts)
    scores = in_memory["token_score"]
    assert not np.allclose(scores[0], scores[1]) and not np.allclose(scores[1], scores[2])
    path = export_token_classifier(module, str(tmp_path / "cased"), smoke_texts=texts)["path"]
    reloaded = NerPredictor.load(path).raw_outputs(texts)
    np.testing.assert_allclose(reloaded["token_score"], scores, atol=1e-5)
    assert (reloaded["token_label"] == in_memory["token_label"]).all()


def test_predictor_accepts_one_text_or_a_list(tiny):
    predictor = tiny[3]
    one = predictor(TEXTS[0])
    assert isinstance(one, list) and one == predictor([TEXTS[0]])[0]
    assert set(one[0]) == {"entity_group", "score", "word", "start", "end"}
    assert predictor([]) == []
    counts = collections.Counter(len(predictor(t)) for t in BAD_TEXTS[:2])
    assert counts == {0: 2}


# ---------------------------------------------------------------- valid-IOB decoding in the graph

def test_graph_viterbi_equals_the_evaluations_numpy_decoding():
    """The export's decoder (TensorFlow ops) and the evaluation's (`decode_tags`, NumPy) agree, empty rows too."""
    rng = np.random.default_rng(0)
    allowed, start = iob_transitions(CONLL2003_LABELS)
    rows = [rng.normal(size=(n, 9)).astype(np.float32) * 3 for n in (0, 1, 5, 17, 0, 2, 40)]
    logits = tf.RaggedTensor.from_row_lengths(np.concatenate(rows), [len(r) for r in rows])
    log_probs = tf.ragged.map_flat_values(tf.nn.log_softmax, logits)
    expected = [decode_tags(r, CONLL2003_LABELS, "iob").tolist() for r in rows]
    assert expected != [r.argmax(-1).tolist() for r in rows]  # The fixture has invalid argmax sequences.
    decode = tf.function(lambda x: viterbi_decode(x, allowed, start),
                         input_signature=[tf.RaggedTensorSpec([None, None, 9], tf.float32, 1, tf.int64)])
    assert viterbi_decode(log_probs, allowed, start).to_list() == expected
    assert decode(log_probs).to_list() == expected
    for lengths in ([0, 0], []):  # Only empty texts; no texts (a graph's scan must still have a step).
        assert decode(tf.RaggedTensor.from_row_lengths(tf.zeros([0, 9]), tf.constant(lengths, tf.int64))).to_list() \
            == [[] for _ in lengths]


def test_iob_piece_labels_decode_words_and_give_later_pieces_the_inside_tag():
    rng = np.random.default_rng(1)
    flat = rng.normal(size=(7, 9)).astype(np.float32) * 3
    logits = tf.RaggedTensor.from_row_lengths(flat, [4, 0, 3])
    vocabulary = ["[PAD]", "moscow", "##ia", "##n", ".", "new", "##ark"]
    # Text 0: "moscowian." = moscow ##ia ##n | . ; text 2: "##ark" first (starts its text's word anyway), new ##ark.
    ids = tf.ragged.constant([[1, 2, 3, 4], [], [6, 5, 6]])
    starts = word_starts(ids, vocabulary)
    assert starts.to_list() == [[True, False, False, True], [], [True, True, False]]
    labels, scores = iob_piece_labels(logits, starts, CONLL2003_LABELS)
    inside = inside_label_ids(CONLL2003_LABELS)
    word_0 = decode_tags(flat[[0, 3]], CONLL2003_LABELS, "iob")
    word_2 = decode_tags(flat[[4, 5]], CONLL2003_LABELS, "iob")
    assert labels.to_list() == [[word_0[0], inside[word_0[0]], inside[word_0[0]], word_0[1]], [],
                                [word_2[0], word_2[1], inside[word_2[1]]]]
    probabilities = tf.nn.softmax(flat).numpy()
    np.testing.assert_allclose(scores.flat_values.numpy(),
                               probabilities[np.arange(7), labels.flat_values.numpy()], rtol=1e-6)


def test_iob_module_gives_valid_iob_and_argmax_where_argmax_is_valid(tiny):
    _, model, preprocessor, argmax_predictor = tiny
    module = TokenClassifierModule(model, preprocessor, decoding="iob")
    texts = TEXTS + BAD_TEXTS
    outputs = {k: v.numpy() for k, v in module.serving_default(tf.constant(texts)).items()}
    reference = argmax_predictor.raw_outputs(texts)
    allowed, start = iob_transitions(CONLL2003_LABELS)
    index = {label: i for i, label in enumerate(CONLL2003_LABELS)}
    changed = 0
    for row in range(len(texts)):
        count = int(outputs["num_tokens"][row])
        tags = [index[t.decode()] for t in outputs["token_label"][row, :count]]
        assert not tags or start[tags[0]]
        assert all(allowed[a, b] for a, b in zip(tags, tags[1:])), (texts[row], tags)
        argmax_tags = [index[t.decode()] for t in reference["token_label"][row, :count]]
        changed += tags != argmax_tags
        for i in range(int(outputs["num_entities"][row])):
            start_, end_ = int(outputs["start"][row, i]), int(outputs["end"][row, i])
            assert outputs["word"][row, i].decode("utf-8") == texts[row][start_:end_]
    assert changed > 0  # The tiny model's argmax tags are often invalid IOB: the decoding has work to do.
    with pytest.raises(ValueError, match="decoding"):
        TokenClassifierModule(model, preprocessor, decoding="crf")


@pytest.mark.large
def test_iob_export_reloads_without_tfnlp(tiny, tmp_path):
    _, model, preprocessor, _ = tiny
    predictor = NerPredictor.from_model(model, preprocessor, decoding="iob")
    export = export_token_classifier(predictor.module, str(tmp_path / "saved"), smoke_texts=TEXTS[:2])
    stdout = run_fresh_python("""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa: F401
        outputs = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
        print(json.dumps([[t.decode() for t in row] for row in outputs["token_label"].numpy()]))
        assert "tfnlp" not in sys.modules
    """, export["path"], json.dumps(TEXTS), cwd=str(tmp_path))
    expected = predictor.raw_outputs(TEXTS)["token_label"]
    assert json.loads(stdout.strip().splitlines()[-1]) == [[t.decode() for t in row] for row in expected]
