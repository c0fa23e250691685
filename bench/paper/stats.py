"""Summary statistics of the paper suite (standard library only).

summary(xs)          mean, sample standard deviation (ddof 1) and count of a list of numbers
paired(xs, ys)       the paired difference x − y over matched seeds: mean, sd, and the 95%
                     Student-t interval mean ± t(0.975, k−1) · sd/√k, with k the number of pairs
T975                 two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (from the
                     standard table; above 30 the normal 1.96 is used, an error below 4%)
"""
import math

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
        18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
        26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}


def t975(df):
    return T975.get(df, 1.96)


def summary(xs):
    """{'mean', 'sd', 'n'} of the numbers in xs (None entries skipped); sd is None for n < 2."""
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    n = len(xs)
    if n == 0:
        return {"mean": None, "sd": None, "n": 0}
    mean = sum(xs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return {"mean": mean, "sd": sd, "n": n}


def paired(xs, ys):
    """Paired difference x − y over the pairs where both are present: {'mean', 'sd', 'n', 'lo', 'hi'}
    with [lo, hi] the 95% t-interval of the mean difference (None for fewer than 2 pairs)."""
    d = [x - y for x, y in zip(xs, ys) if x is not None and y is not None]
    s = summary(d)
    if s["n"] < 2:
        return {**s, "lo": None, "hi": None}
    half = t975(s["n"] - 1) * s["sd"] / math.sqrt(s["n"])
    return {**s, "lo": s["mean"] - half, "hi": s["mean"] + half}
