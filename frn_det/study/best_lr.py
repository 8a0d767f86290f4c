"""The study's choice of learning rate for a cell, as the paper reports the best of its three base_lr
values: the one whose runs have the best mean AP over the seeds that every lr ran (the sweep's), so that
seeds added at one lr do not move the choice; over each lr's own seeds where they share none."""
import statistics


def best_lr(ap_by_lr):
    """The key of {lr: {seed: AP}} with the best mean AP over the seeds common to all lrs, the first in
    order among equals; None when empty."""
    swept = set.intersection(*(set(by_seed) for by_seed in ap_by_lr.values())) if ap_by_lr else set()
    return max(ap_by_lr, key=lambda lr: statistics.mean(ap for seed, ap in ap_by_lr[lr].items()
                                                        if not swept or seed in swept), default=None)
