"""Unit tests of bench/paper/fewshot.py (stdlib unittest + numpy).

Run from the repository root: .venv/bin/python -m unittest discover -s bench/paper -p 'test_*.py' -v
"""
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fewshot import sample_per_class  # noqa: E402


def labels_fixture():
    # 10 classes of unequal size (30..39 rows), shuffled.
    y = np.concatenate([np.full(30 + c, c) for c in range(10)])
    return np.random.default_rng(7).permutation(y)


class SamplePerClass(unittest.TestCase):
    def test_exactly_n_per_class(self):
        y = labels_fixture()
        for n in (1, 5, 10, 20, 30):
            idx = sample_per_class(y, n, seed=3)
            self.assertEqual(len(idx), 10 * n)
            self.assertEqual(len(set(idx.tolist())), len(idx), "no row twice")
            counts = np.bincount(y[idx], minlength=10)
            self.assertTrue((counts == n).all(), counts)

    def test_same_seed_same_indices(self):
        y = labels_fixture()
        a = sample_per_class(y, 5, seed=11)
        b = sample_per_class(y.copy(), 5, seed=11)
        np.testing.assert_array_equal(a, b)

    def test_different_seeds_differ(self):
        y = labels_fixture()
        draws = {tuple(sample_per_class(y, 5, seed=s).tolist()) for s in range(10)}
        self.assertEqual(len(draws), 10)

    def test_refuses_n_larger_than_a_class(self):
        y = labels_fixture()  # the smallest class has 30 rows
        with self.assertRaises(ValueError):
            sample_per_class(y, 31, seed=0)

    def test_refuses_bad_n(self):
        y = labels_fixture()
        for bad in (0, -1, 2.5):
            with self.assertRaises(ValueError):
                sample_per_class(y, bad, seed=0)


if __name__ == "__main__":
    unittest.main()
