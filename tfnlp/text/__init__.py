"""In-graph text processing: BERT tokenization that runs inside tf.data, Keras models and SavedModels."""

from tfnlp.text.bert_tokenizer import BertTokenizer

__all__ = ["BertTokenizer"]
