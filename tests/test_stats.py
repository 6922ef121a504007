import numpy as np

from reports.stats import median_ci


def test_median_ci_covers_the_true_median_at_about_the_stated_rate():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        samples = rng.lognormal(mean=np.log(100), sigma=0.1, size=25)  # true median 100
        low, high = median_ci(samples, seed=trial)
        covered += low <= 100 <= high
    assert 0.88 <= covered / 200 <= 0.995


def test_median_ci_narrows_with_more_samples_and_is_seeded():
    rng = np.random.default_rng(2)
    small, large = rng.normal(10, 1, 10), rng.normal(10, 1, 1000)
    (a, b), (c, d) = median_ci(small), median_ci(large)
    assert (d - c) < (b - a) / 3
    assert median_ci(small) == median_ci(small)


def test_degenerate_inputs():
    assert median_ci(np.array([5.0])) == (5.0, 5.0)
    low, high = median_ci(np.array([]))
    assert np.isnan(low) and np.isnan(high)
