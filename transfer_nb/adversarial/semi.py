"""Pseudo-labelled (semi-supervised) source data: the other half of Deng et al. (2021).

Deng et al., "Adversarial Training Helps Transfer Learning via Better Representations"
(NeurIPS 2021) train the source on labelled plus pseudo-labelled data, alone and
combined with adversarial training (:mod:`transfer_nb.adversarial`).  This module makes
the data set; the model is trained by ``train_source`` (there is no training loop here).

* :func:`pseudo_label` -- confident predictions of a teacher on unlabelled images.
* :func:`pseudo_labeled_dataset`, :func:`semi_supervised_dataset` -- the labelled +
  pseudo-labelled data set a student source model is trained on.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from transfer_nb import training
from transfer_nb._validation import check_batch_size as _check_batch_size
from transfer_nb._validation import check_real as _check_real
from transfer_nb._validation import plain as _plain
from transfer_nb.preprocessing import model_input_transform as _model_input_transform

__all__ = ["pseudo_label", "pseudo_labeled_dataset", "semi_supervised_dataset",
           "PseudoLabeledDataset"]


def _check_threshold(threshold) -> float:
    v = _check_real(threshold, "threshold")
    if not 0 < v <= 1:
        raise ValueError(f"threshold must satisfy 0 < threshold <= 1 (a softmax probability), "
                         f"got {_plain(threshold)!r}")
    return v


# --------------------------------------------------------------------------- pseudo-labels

def pseudo_label(model: nn.Module, unlabeled_data, threshold: float = 0.9, batch_size: int = 256,
                 device=None, normalize="model") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confident predictions of a teacher ``model`` on unlabelled images.

    The model (in eval mode; modes restored) predicts every image; an image is kept
    when its maximum softmax probability is ``>= threshold`` (inclusive), and its
    pseudo-label is the arg-max class.  Deng et al. (2021) train the source on labelled
    plus pseudo-labelled data; the confidence filter is the usual pseudo-labelling
    safeguard (FixMatch uses 0.95).  Any ``threshold <= 1 / n_classes`` keeps every
    image, since the maximum of a softmax is at least ``1 / n_classes``.

    Parameters
    ----------
    model : torch.nn.Module
        Teacher classifier returning logits.
    unlabeled_data : Dataset, DataLoader, tensor or tuple (X,) / (X, y)
        Pixel-space images (or an ``ImageDataset`` already normalised, see its
        ``.normalize``); labels, if the items carry them, are ignored.
    threshold : float
        ``0 < threshold <= 1``.
    batch_size : int
    device : str or torch.device, optional
        ``None``: where the model is; otherwise the model is moved there.
    normalize : "model", None, str or callable
        Pixel -> model input, as in :func:`transfer_nb.adversarial.pgd`; skipped for a
        data set whose ``.normalize`` says it is normalised already.

    Returns
    -------
    indices : numpy.ndarray of int64
        Positions in ``unlabeled_data`` of the kept images, increasing.
    labels : numpy.ndarray of int64
        Their pseudo-labels.
    confidences : numpy.ndarray of float64
        Their maximum softmax probabilities (all ``>= threshold``).
    """
    threshold = _check_threshold(threshold)
    batch_size = _check_batch_size(batch_size)
    if isinstance(unlabeled_data, tuple) and len(unlabeled_data) == 1:
        unlabeled_data = unlabeled_data[0]
    transform, _ = _model_input_transform(normalize, model, unlabeled_data)
    if len(unlabeled_data) == 0:
        conf, pred = np.zeros(0), np.zeros(0, dtype=np.int64)
    else:
        logits = torch.from_numpy(training.predict(model, unlabeled_data, batch_size=batch_size,
                                                   device=device, transform=transform))
        probs = torch.softmax(logits.float(), dim=1)
        c, k = probs.max(dim=1)
        conf, pred = c.double().numpy(), k.numpy().astype(np.int64)
    keep = np.flatnonzero(conf >= threshold).astype(np.int64)
    return keep, pred[keep], conf[keep]


class PseudoLabeledDataset(torch.utils.data.Dataset):
    """Labelled examples followed by pseudo-labelled ones, as ``(x, int label)`` pairs.

    Items ``0 .. n_labeled - 1`` are ``labeled[i]``; item ``n_labeled + j`` is image
    ``unlabeled[pseudo_indices[j]]`` (its own label, if any, dropped) with label
    ``pseudo_labels[j]``.

    Attributes
    ----------
    classes : list of str or None
        From ``labeled.classes`` (what ``train_source`` uses for the number of outputs).
    targets : numpy.ndarray of int64
        Every label, labelled then pseudo.
    is_pseudo : numpy.ndarray of bool
    spec : dict or None
        When both parts have a ``spec``: both specs plus a digest of the pseudo-labels
        (so a cached source model is keyed by what it was trained on); otherwise None
        and ``train_source`` hashes the content.
    """

    def __init__(self, labeled, unlabeled, indices, labels):
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(idx) != len(lab):
            raise ValueError(f"indices has {len(idx)} entries but labels has {len(lab)}")
        if len(idx) and (idx.min() < 0 or idx.max() >= len(unlabeled)):
            raise ValueError(f"indices must lie in 0..{len(unlabeled) - 1}, "
                             f"got {int(idx.min())}..{int(idx.max())}")
        if len(np.unique(idx)) != len(idx):
            raise ValueError("indices contains duplicates; each unlabelled image is pseudo-labelled once")
        classes = getattr(labeled, "classes", None)
        self.classes = None if classes is None else list(classes)
        if len(lab) and (lab.min() < 0 or (self.classes and lab.max() >= len(self.classes))):
            hi = f"{len(self.classes) - 1}" if self.classes else "K-1"
            raise ValueError(f"labels must lie in 0..{hi}, got {int(lab.min())}..{int(lab.max())}")
        self.labeled, self.unlabeled = labeled, unlabeled
        self.pseudo_indices, self.pseudo_labels = idx, lab
        self.n_labeled = len(labeled)
        own = getattr(labeled, "targets", None)
        if own is None:
            own = [int(labeled[i][1]) for i in range(self.n_labeled)]
        self.targets = np.concatenate([np.asarray(own, dtype=np.int64).reshape(-1), lab])
        self.is_pseudo = np.arange(len(self.targets)) >= self.n_labeled
        spec_l, spec_u = getattr(labeled, "spec", None), getattr(unlabeled, "spec", None)
        if spec_l is not None and spec_u is not None:
            digest = hashlib.sha256(idx.tobytes() + b"|" + lab.tobytes()).hexdigest()[:16]
            self.spec = {"kind": "pseudo_labeled", "labeled": spec_l, "unlabeled": spec_u,
                         "pseudo": digest, "n_pseudo": int(len(idx))}
        else:
            self.spec = None

    def __len__(self) -> int:
        return self.n_labeled + len(self.pseudo_indices)

    def __getitem__(self, i):
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        if i < self.n_labeled:
            x, y = self.labeled[i][:2]
            return x, int(y)
        j = i - self.n_labeled
        item = self.unlabeled[int(self.pseudo_indices[j])]
        x = item[0] if isinstance(item, (tuple, list)) else item
        return x, int(self.pseudo_labels[j])


def pseudo_labeled_dataset(labeled, unlabeled, indices, labels) -> PseudoLabeledDataset:
    """Labelled data plus the pseudo-labelled images ``unlabeled[indices]``.

    ``indices`` and ``labels`` are the first two outputs of :func:`pseudo_label`.  The
    result is what a student source model is trained on, e.g.
    ``train_source(arch, pseudo_labeled_dataset(...), ...)``.  See
    :class:`PseudoLabeledDataset`.
    """
    return PseudoLabeledDataset(labeled, unlabeled, indices, labels)


def semi_supervised_dataset(teacher: nn.Module, labeled, unlabeled, threshold: float = 0.9,
                            batch_size: int = 256, device=None, normalize="model") -> PseudoLabeledDataset:
    """:func:`pseudo_label` the unlabelled images with ``teacher``, then combine.

    Self-training in one call: the teacher (usually a source model trained on
    ``labeled`` alone) labels ``unlabeled``; the confident ones join ``labeled``.
    """
    idx, lab, _ = pseudo_label(teacher, unlabeled, threshold=threshold, batch_size=batch_size,
                               device=device, normalize=normalize)
    return pseudo_labeled_dataset(labeled, unlabeled, idx, lab)
