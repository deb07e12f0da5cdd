# SPDX-License-Identifier: GPL-2.0
"""Paired ratios (Rust/C per round) summed up the same way by tools/bench and
tools/profile/pairs: their median, their geometric mean and a 95 % interval
for it (Student's t on the logs, the rounds taken as independent pairs)."""
import math
import statistics

# Two-sided 95 % quantiles of Student's t by degrees of freedom (1-30).
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t95(df):
    """The two-sided 95 % quantile of Student's t with df degrees of freedom
    (the normal's 1.96 beyond the table, within 4 % of t there)."""
    return _T95[df - 1] if df <= len(_T95) else 1.96


def summary(ratios):
    """(median, geometric mean, low, high) of positive ratios; the interval is
    None with fewer than two."""
    logs = [math.log(x) for x in ratios]
    gm = math.exp(statistics.mean(logs))
    if len(logs) < 2:
        return statistics.median(ratios), gm, None, None
    h = t95(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return statistics.median(ratios), gm, gm * math.exp(-h), gm * math.exp(h)
