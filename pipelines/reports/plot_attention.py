"""Draw a text's attention in a BERT as a PNG: one heat map per head of the chosen layer.

    python -m pipelines.reports.plot_attention --model saved_models/agnews_hf_bert --text "Oil prices rose." --out attention.png

--model is a HF BERT folder (a ``save_pretrained`` folder, e.g. an HF classifier
export's <version>/hf_model), an HF classifier export (a version folder, or the
model's folder for its newest version), or '' for the packaged
all-MiniLM-L6-v2. The text's word pieces label both axes; padding is never drawn.
"""

import dataclasses
import logging

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from tfnlp.models.attention_maps import attention_maps, load_attention_model
from tfnlp.plots import plot_attention
from tfnlp.training import cli, field, parse_arguments

logger = logging.getLogger("plot_attention")


@dataclasses.dataclass
class PlotArguments:
    """Which model, which text, which layer and heads, and where the picture goes."""

    text: str = field("", "The text whose attention is drawn (required).")
    model: str = field("", "HF BERT folder, HF classifier export (version folder or model folder), or '' for "
                           "the packaged all-MiniLM-L6-v2.")
    layer: int = field(-1, "Layer to draw: 0 = the first, -1 = the last.")
    heads: str = field("", "Comma-separated head indices to draw, e.g. '0,3,7'; '' = all heads.")
    columns: int = field(4, "Panels per row.")
    sequence_length: int = field(64, "Longest tokenization drawn ([CLS] and [SEP] included); longer texts are cut.")
    out: str = field("attention.png", "The PNG to write.")

    def __post_init__(self):
        if not self.text.strip():
            raise ValueError("--text is required (a non-empty text)")
        if self.columns < 1:
            raise ValueError("--columns must be at least 1")
        if not 3 <= self.sequence_length <= 512:
            raise ValueError("--sequence-length must lie in [3, 512]")
        self.head_list()  # Validates --heads.

    def head_list(self):
        """--heads as a list of int (None for all heads)."""
        if not self.heads:
            return None
        try:
            return [int(part) for part in self.heads.split(",")]
        except ValueError:
            raise ValueError(f"--heads must be comma-separated integers, got {self.heads!r}") from None


def main(argv=None):
    (args,) = parse_arguments(__doc__, PlotArguments, argv=argv)
    model, tokenizer = load_attention_model(args.model or None, sequence_length=args.sequence_length)
    maps = attention_maps(model, tokenizer, args.text)
    path = plot_attention(maps, args.out, layer=args.layer, heads=args.head_list(), columns=args.columns)
    layers, heads = maps.attentions.shape[:2]
    cli.log_result("%d tokens, layer %d of %d, %d heads drawn: %s", len(maps.tokens), args.layer % layers, layers,
                   len(args.head_list() or range(heads)), path, log=logger)
    return {"path": path, "tokens": maps.tokens, "layers": int(layers), "heads": int(heads)}


if __name__ == "__main__":
    cli.run(main)
