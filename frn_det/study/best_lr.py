"""The study's choice of learning rate for a cell, as the paper reports the best of its three base_lr
values: the one whose runs (seeds) have the best mean AP."""
import statistics


def best_lr(ap_by_lr):
    """The key of {lr: [AP over seeds]} with the best mean AP, the first in order among equals; None
    when empty."""
    return max(ap_by_lr, key=lambda lr: statistics.mean(ap_by_lr[lr]), default=None)
