"""Evaluating a classifier on a dataset and writing the figures."""

import numpy as np

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

from tfnlp.training.metrics import classification_report


def predict_classes(model, dataset):
    """Runs ``model`` over a dataset of ``(inputs, label)`` batches; returns (labels, predicted ids, logits)."""
    labels, logits = [], []
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    for inputs, batch_labels in dataset:
        logits.append(tf.cast(predict(inputs), tf.float32).numpy())
        labels.append(batch_labels.numpy())
    logits = np.concatenate(logits)
    return np.concatenate(labels), logits.argmax(axis=-1), logits


def evaluate_classifier(model, dataset, class_names):
    """`classification_report` of ``model`` on a dataset of ``(inputs, label)`` batches."""
    labels, predictions, _ = predict_classes(model, dataset)
    return classification_report(labels, predictions, class_names)
