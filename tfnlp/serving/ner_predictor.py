"""Named entities from raw text, in the shape of HF's ``pipeline("token-classification", aggregation_strategy="simple")``.

`NerPredictor` turns texts into lists of ``{"entity_group", "score", "word",
"start", "end"}`` dicts. It runs a `TokenClassifierModule`'s signature, either
in memory (``NerPredictor.from_model``) or from an exported SavedModel
(``NerPredictor.load``, which needs only TensorFlow and tensorflow-text), so
the library, the export and a REST client reading the export all give the same
entities.

Compared with HF's pipeline on the same model, the groups, their offsets and
their scores are the same (scores within float32 rounding; measured in
``tests/test_ner_serving.py``). Two differences, both deliberate:

- ``word`` is the original text's characters ``start:end`` ("Moscow Aviation
  Institute"); HF's is the decoded word pieces, lower-cased by an uncased
  tokenizer ("moscow aviation institute");
- a text longer than the model's window is read in overlapping windows with
  each piece predicted where it has the most context, up to the module's
  ``max_pieces`` (then ``truncated`` says so); HF's pipeline truncates it to
  one window (or, with ``stride``, merges overlapping entities its own way).

Example:
>>> predictor = NerPredictor.load("saved_models/conll_ner/1")  # doctest: +SKIP
>>> predictor("My name is Dmitry and I work at Moscow Aviation Institute in Moscow.")  # doctest: +SKIP
[{'entity_group': 'PER', 'score': 0.99..., 'word': 'Dmitry', 'start': 11, 'end': 17}, ...]
"""

import numpy as np

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

from tfnlp.serving.token_classifier_module import TokenClassifierModule


class NerPredictor:
    """Raw texts to grouped entities (HF pipeline fields) through a token-classifier serving signature.

    Args:
        signature: callable. Takes ``text`` (`tf.string` ``[None]``) and returns the outputs of
            `tfnlp.serving.TokenClassifierModule.serving_default`.
        batch_size: int. Texts per call.
    """

    def __init__(self, signature, batch_size=32):
        self._signature = signature
        self.batch_size = int(batch_size)

    @classmethod
    def from_model(cls, model, preprocessor, decoding="argmax", batch_size=32, **module_options):
        """A predictor running ``model`` in memory through a `tfnlp.serving.TokenClassifierModule` (``decoding``
        and ``module_options`` such as ``max_pieces`` go to it)."""
        module = TokenClassifierModule(model, preprocessor, decoding=decoding, **module_options)
        predictor = cls(module.serving_default, batch_size=batch_size)
        predictor.module = module
        return predictor

    @classmethod
    def load(cls, path, **kwargs):
        """A predictor running an exported SavedModel (``saved_models/conll_ner/<version>``)."""
        import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)

        loaded = tf.saved_model.load(path)
        predictor = cls(loaded.signatures["serving_default"], **kwargs)
        predictor.loaded = loaded  # Keeps the SavedModel's resources alive.
        return predictor

    def __call__(self, texts):
        """Entities of one text (a list of dicts) or of a list of texts (a list of such lists)."""
        if isinstance(texts, str):
            return self([texts])[0]
        texts = list(texts)
        entities = []
        for start in range(0, len(texts), self.batch_size):
            outputs = self.raw_outputs(texts[start:start + self.batch_size])
            entities.extend(entities_from_outputs(outputs))
        return entities

    def raw_outputs(self, texts):
        """The signature's outputs for ``texts`` (list of str), as NumPy arrays."""
        outputs = self._signature(text=tf.constant(list(texts), tf.string, shape=[len(texts)]))
        return {key: value.numpy() for key, value in outputs.items()}


def text_entities(outputs, row, score=float):
    """The entities of text ``row`` in a serving signature's padded outputs, as HF-pipeline dicts.

    The one place that reads the ``entity_group``/``score``/``word``/``start``/``end`` and
    ``num_entities`` outputs back into records (used by `NerPredictor` and
    `tfnlp.serving.served_model.ServedModel`).

    Args:
        outputs: dict of NumPy arrays. The outputs of a `tfnlp.serving.TokenClassifierModule` signature.
        row: int. The text's row.
        score: callable. Converts a NumPy float32 score (``float``, or a JSON formatter).

    Returns:
        list of dict: ``{"entity_group", "score", "word", "start", "end"}`` in text order.

    Example:
    >>> outputs = {"entity_group": np.array([[b"PER", b""]]), "score": np.array([[0.5, 0.0]], np.float32),
    ...            "word": np.array([[b"John", b""]]), "start": np.array([[0, 0]]), "end": np.array([[4, 0]]),
    ...            "num_entities": np.array([1])}
    >>> text_entities(outputs, 0)
    [{'entity_group': 'PER', 'score': 0.5, 'word': 'John', 'start': 0, 'end': 4}]
    """
    return [{"entity_group": outputs["entity_group"][row, i].decode("utf-8", "replace"),
             "score": score(outputs["score"][row, i]),
             "word": outputs["word"][row, i].decode("utf-8", "replace"),
             "start": int(outputs["start"][row, i]),
             "end": int(outputs["end"][row, i])} for i in range(int(outputs["num_entities"][row]))]


def entities_from_outputs(outputs, score=float):
    """The serving signature's padded entity outputs (NumPy) as HF-pipeline dicts, one list per text (`text_entities`)."""
    return [text_entities(outputs, row, score) for row in range(len(outputs["num_entities"]))]


def check_same_entities(actual, expected, *, atol=1e-4, compare_words=True, context=""):
    """Raises AssertionError unless two lists (one per text) of entity dicts agree (the export's reload check,
    the NER script's comparison with HF's pipeline).

    Groups, offsets (and ``word`` if ``compare_words``) must be equal, scores within ``atol``.

    Example:
    >>> john = [[{"entity_group": "PER", "score": 0.9, "word": "John", "start": 0, "end": 4}]]
    >>> check_same_entities(john, [[{**john[0][0], "score": 0.90001}]])
    >>> check_same_entities(john, [[{**john[0][0], "end": 5}]], context="reloaded")
    Traceback (most recent call last):
    ...
    AssertionError: reloaded: text 0: entities [('PER', 0, 4, 'John')] != [('PER', 0, 5, 'John')]
    """
    if len(actual) != len(expected):
        raise AssertionError(f"{context}: {len(actual)} texts against {len(expected)}")
    for index, (got, want) in enumerate(zip(actual, expected)):
        keys = ("entity_group", "start", "end") + (("word",) if compare_words else ())
        spans = [tuple(e[k] for k in keys) for e in got]
        expected_spans = [tuple(e[k] for k in keys) for e in want]
        if spans != expected_spans:
            raise AssertionError(f"{context}: text {index}: entities {spans} != {expected_spans}")
        difference = max((abs(a["score"] - b["score"]) for a, b in zip(got, want)), default=0.0)
        if not difference <= atol:
            raise AssertionError(f"{context}: text {index}: scores differ by {difference:.3g} > {atol}")


def hf_pipeline_entities(pipeline, texts):
    """HF pipeline outputs as plain dicts (Python numbers), one list per text."""
    results = pipeline(list(texts))
    return [[{"entity_group": e["entity_group"], "score": float(np.asarray(e["score"])), "word": e["word"],
              "start": int(e["start"]), "end": int(e["end"])} for e in entities] for entities in results]
