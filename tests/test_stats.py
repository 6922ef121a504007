import numpy as np

from harness.record import SCHEMA_VERSION, Block, TrialRecord
from reports.aggregate import busy_machine, summarize, throughput_ci
from reports.stats import median_ci, pooled_noise, process_interval


def test_median_ci_covers_the_true_median_at_about_the_stated_rate():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        samples = rng.lognormal(mean=np.log(100), sigma=0.1, size=60)  # true median 100; ~60 blocks per trial
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


def _slow_spells(rng: np.random.Generator, n: int, phi: float = 0.8) -> np.ndarray:
    """Block rates whose log follows an AR(1) process (true median 100): neighbouring blocks alike,
    as when a shared machine slows down for a second or more."""
    steps = rng.normal(0, 0.05 * np.sqrt(1 - phi ** 2), n)
    logs = np.empty(n)
    logs[0] = rng.normal(0, 0.05)
    for i in range(1, n):
        logs[i] = phi * logs[i - 1] + steps[i]
    return 100 * np.exp(logs)


def test_neighbouring_blocks_are_resampled_together():
    """With slow spells, blocks are not independent: the interval must be wider than an i.i.d.
    bootstrap's and cover the true median far more often (no bootstrap reaches the nominal 95%
    when spells are this long against 60 blocks; the block bootstrap comes closest)."""
    rng = np.random.default_rng(3)
    covered, covered_iid = 0, 0
    for trial in range(200):
        samples = _slow_spells(rng, 60)
        low, high = median_ci(samples, seed=trial)
        iid = np.quantile(np.median(rng.choice(samples, (2000, samples.size)), axis=1), [0.025, 0.975])
        covered += low <= 100 <= high
        covered_iid += iid[0] <= 100 <= iid[1]
    assert covered / 200 >= 0.75
    assert covered - covered_iid >= 0.15 * 200


def test_repeats_widen_the_interval_by_the_spread_between_processes():
    rng = np.random.default_rng(4)
    processes = [rng.normal(level, 1, 30) for level in (90, 100, 110)]
    low, high = median_ci(processes)
    one_low, one_high = median_ci(processes[1])
    assert (high - low) > 3 * (one_high - one_low)
    assert low < 95 and high > 105


def test_few_processes_get_the_student_t_interval_of_their_medians():
    """Three processes per trial, each off by a process-level factor (sd 5%), nine trials a run:
    the bootstrap alone draws from too few processes to cover the true level at the stated rate;
    widened to the t interval with the spread pooled over the run's trials, it does."""
    rng = np.random.default_rng(5)
    covered = covered_bootstrap = total = 0
    for run in range(12):
        trials = [[100 * np.exp(rng.normal(0, 0.05)) * np.exp(rng.normal(0, 0.02, 30)) for _ in range(3)]
                  for _ in range(9)]
        noise = pooled_noise(trials)
        assert noise.df == 18 and 0.02 < noise.sd < 0.09
        for processes in trials:
            low, high = throughput_ci(processes, noise)
            boot_low, boot_high = median_ci(processes)
            assert low <= boot_low and high >= boot_high  # only ever widened
            covered += low <= 100 <= high
            covered_bootstrap += boot_low <= 100 <= boot_high
            total += 1
    assert covered / total >= 0.9
    assert covered_bootstrap / total <= 0.85


def test_process_interval_needs_some_between_process_spread():
    one = [np.array([100.0, 101.0, 99.0])]
    assert pooled_noise([one]).df == 0
    assert process_interval(one, pooled_noise([one])) is None
    assert throughput_ci(one, pooled_noise([one])) == median_ci(one)
    others = pooled_noise([[np.array([90.0]), np.array([110.0])]])
    low, high = process_interval(one, others)  # a trial without repeats is judged by the others' spread
    assert low < 90 and high > 110


def test_a_process_on_a_busy_machine_widens_its_own_trial_only():
    """A process at 4% of its repeats' speed, started while the machine was busy (as seen here):
    kept out of the pooled spread, it widens its own trial's interval, not every trial's."""
    rng = np.random.default_rng(6)
    records = []
    for t in range(9):
        for repeat in range(3):
            rate = 100 * np.exp(rng.normal(0, 0.05)) * (0.04 if (t, repeat) == (0, 0) else 1.0)
            records.append(_record(f"f{t}", repeat, rate * np.exp(rng.normal(0, 0.02, 30)),
                                   machine_gflops=50.0 if (t, repeat) == (0, 0) else 200 + repeat))
    assert [r.label for r in busy_machine(records)] == ["f0"]
    frame = summarize(records).set_index("label")
    assert frame.loc["f0", "throughput_low"] < 20
    others = frame.drop("f0")
    assert (others["throughput_low"] > 80).all() and (others["throughput_high"] < 125).all()
    for r in records:
        r.machine_gflops = None  # unprobed: the disturbed process goes into the pool and widens everyone's
    assert (summarize(records).set_index("label").drop("f0")["throughput_low"] < 60).all()


def _record(label: str, repeat: int, rates: np.ndarray, machine_gflops: float | None) -> TrialRecord:
    blocks = [Block(epoch=0, first_step=1 + 10 * k, steps=10, seconds=10 * 100 / r) for k, r in enumerate(rates)]
    return TrialRecord(schema_version=SCHEMA_VERSION, trial_id=f"w.d.{label}.default.r{repeat}", run_id="run",
                       framework=label, variant="default", label=label, workload="w", dataset="d", profile="quick",
                       device="cpu", threads=2, seed=0, repeat=repeat, status="ok", batch_size=100, blocks=blocks,
                       machine_gflops=machine_gflops)
