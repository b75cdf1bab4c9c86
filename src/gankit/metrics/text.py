"""``text_accuracy``: how often a picture drawn from a sentence shows the class the sentence describes.

A text-to-image run (method ``cgan_text``) is evaluated on the sentences of the split it is
judged against (the contract's ``inputs``): for ``fashion_mnist_text``'s test split these
are held-out phrasings, never read in training, so the score says whether the generator
understood new descriptions, not only the sentences it was shown (``gankit eval RUN
--split train`` scores the training phrasings). The judge is a classifier of real
pictures, by default the shipped Fashion-MNIST one, whatever features the other metrics use.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ..errors import ConfigError
from ..registries import METRICS
from .evaluate import EvalSet, get_extractor

__all__ = ["text_accuracy"]


@METRICS.register("text_accuracy")
def text_accuracy(s: EvalSet, /, classifier: str = "fashion_mnist") -> Dict[str, float]:
    """Text-to-image runs: the share of samples that the classifier (default: the shipped
    Fashion-MNIST one) puts in the class of the sentence they were drawn from
    (text_accuracy), the lowest of those shares over the classes (text_accuracy_worst_class),
    and the classifier's accuracy on the real pictures of the split (text_accuracy_real, the
    ceiling)."""
    from .modes import conditional_accuracy

    if "text" not in s.outputs_local or s.fake_labels_local is None:
        raise ConfigError("text_accuracy needs pictures drawn from sentences of known classes: evaluate a "
                          "text-to-image run (method cgan_text on data with a text field and labels, e.g. "
                          "fashion_mnist_text)")
    ext = s.extractor
    if ext is None or getattr(ext, "name", None) != classifier or not getattr(ext, "num_classes", 0):
        ext = get_extractor(classifier, "text_accuracy:classifier")
    want = s.fake_labels.long().numpy()
    if int(want.max(initial=0)) >= ext.num_classes:
        raise ConfigError(f"the classifier '{classifier}' has {ext.num_classes} classes but the sentences describe "
                          f"class {int(want.max())}: choose the data set's classifier (text_accuracy:classifier=NAME)")
    logits = np.asarray(ext.logits(s.fake))
    hit = logits.argmax(1) == want
    out = {"text_accuracy": conditional_accuracy(logits, want, lambda p: p),
           "text_accuracy_worst_class": float(min(hit[want == c].mean() for c in np.unique(want)))}
    if s.real_labels is not None and len(s.real):
        out["text_accuracy_real"] = conditional_accuracy(ext.logits(s.real), s.real_labels.long().numpy(),
                                                         lambda p: p)
    return out
