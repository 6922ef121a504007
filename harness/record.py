"""What a trial is (TrialSpec) and what it produced (TrialRecord), as versioned JSON.

Records keep raw figures only; statistics are computed by `reports`. Files are written atomically
(`harness.files`), and a record is never replaced. Reading one back is validated
(`harness.schema`), since a record on disk may have been edited or damaged.
Standard library only: this runs in every child environment.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.numerics import PRECISIONS, Numerics
from workloads.profiles import STOPS

SCHEMA_VERSION = 1
# interrupted: the run was stopped (Ctrl-C, SIGTERM, SIGHUP) during the trial; `--resume` reruns it.
STATUSES = ("ok", "skipped", "error", "timeout", "interrupted")
EXECUTORS = ("local", "ray")
# train: the workload's training recipe, timed per step; infer: the model's inference path, timed per call.
SCENARIOS = ("train", "infer")
# Where a trial's time goes (TrialRecord.phases), in the order they happen. start: from the
# parent's launch to the child's main (the interpreter, NumPy and the harness); import: the
# framework and its settings; data: the dataset read and cut; build: the model from the spec's
# weights; first step: the first block (tracing, compilation); timed: the timed blocks after it
# (warm-up included; inference calls in the infer scenario); staging: each epoch's batches put on
# the device; evaluation: test-set accuracy; latency: steps or calls timed one by one; other: the
# rest of the child (losses read, progress written, the record); end: from the record written to
# the child's exit seen by the parent; probe: the machine-speed probe the parent ran just before.
PHASES = ("probe", "start", "import", "data", "build", "first step", "timed", "staging", "evaluation", "latency",
          "other", "end")
# The reason of an `error` record whose trial's node left the cluster: `--resume` reruns it.
NODE_LOST = "node lost"


def _iso_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


# What a figure of each kind may be: (test, how a message says it).
_VALID = {
    "count": (lambda v: v >= 1, "a whole number of 1 or more"),
    "index": (lambda v: v >= 0, "a whole number of 0 or more"),
    "amount": (lambda v: _finite(v) and v >= 0, "a finite number of 0 or more"),
    "rate": (lambda v: _finite(v) and v > 0, "a finite number above 0"),
    "fraction": (lambda v: 0 <= v <= 1, "a number from 0 to 1"),
}


@dataclass(frozen=True)
class TrialSpec:
    """One trial: a framework variant training one workload once, in its own process."""

    trial_id: str
    framework: str
    variant: str
    label: str  # "pytorch", "keras:torch"
    adapter: str  # "module:Class", imported in the child
    workload: str
    dataset: str
    profile: str
    device: str  # "cpu", "cuda" or "auto"
    threads: int
    seed: int
    repeat: int
    data_dir: str | None = None
    cache_dir: str | None = None
    timeout_s: float = 900.0
    scenario: str = "train"
    batch_size: int | None = None  # None: the workload's own
    width: int | None = None  # None: the workload's own (its hidden units or filters, see WorkloadSpec)
    precision: str = "fp32"  # one of adapters.numerics.PRECISIONS
    tf32: bool = False  # float32 matmuls may use TF32 (GPU)
    autotune: bool = True  # convolution autotuning (GPU)
    malloc: str = "default"  # the C allocator's policy (harness.allocator)
    budget_s: float | None = None  # timed training seconds before training ends without its target (workloads.profiles)

    @property
    def numerics(self) -> Numerics:
        return Numerics(self.precision, self.tf32, self.autotune)

    @property
    def point(self) -> str:
        """The workload and, where not its own training shape and float32, the scenario, shape and
        precision: 'mnist_mlp infer b32 mixed-bf16'."""
        return " ".join([self.workload] + (["infer"] if self.scenario == "infer" else [])
                        + ([f"b{self.batch_size}"] if self.batch_size else []) + ([f"w{self.width}"] if self.width else [])
                        + ([self.precision] if self.precision != "fp32" else []))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialSpec":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclass
class Block:
    """A run of consecutive training steps timed as one: device barrier, clock, steps, barrier, clock."""

    epoch: int
    first_step: int  # global index of the block's first step
    steps: int
    seconds: float


@dataclass
class Evaluation:
    """Test accuracy after `step` steps; `train_seconds` is the timed training time up to then
    (first block included, evaluation excluded)."""

    step: int
    epoch: float
    train_seconds: float
    test_accuracy: float


@dataclass(frozen=True)
class NodeIdentity:
    """The machine a trial ran on (harness.node.identify). `fingerprint` is equal for machines of
    the same kind (CPU model, cores, memory, GPUs), `host_id` for processes that share one kernel
    (simulated nodes, containers on one host), which therefore share its cores."""

    node_id: str  # Ray's node id; "local" for the local executor
    alias: str  # "host-<hash of the hostname>", or the hostname when the run asked to record it
    host_id: str
    fingerprint: str
    cpu_model: str
    cpu_cores: int | None = None
    memory_bytes: int | None = None
    gpus: list[str] = field(default_factory=list)  # name, memory, driver version, as nvidia-smi lists them


@dataclass(frozen=True)
class Placement:
    """Where and how often a trial ran, stamped on its record by the parent that placed it."""

    executor: str = "local"
    node: NodeIdentity | None = None
    attempt: int = 1


@dataclass
class TrialRecord:
    """Everything one trial measured. Sizes are bytes, times seconds, throughput is derived by
    reports from `blocks` (samples = steps x batch_size)."""

    schema_version: int
    trial_id: str
    run_id: str
    framework: str
    variant: str
    label: str
    workload: str
    dataset: str
    profile: str
    device: str  # the device actually used ("auto" resolved) or the one asked for, if not run
    threads: int
    seed: int
    repeat: int
    status: str  # one of STATUSES
    reason: str = ""  # why a trial was skipped or failed; empty when ok
    versions: dict[str, str] = field(default_factory=dict)  # framework packages, numpy, python
    settings: dict[str, Any] = field(default_factory=dict)  # as applied: threads, mode, jit, backend
    param_count: int | None = None  # as the framework counts its trainable parameters
    spec_param_count: int | None = None  # the spec's analytic count
    batch_size: int | None = None
    train_samples: int | None = None
    test_samples: int | None = None
    steps_per_epoch: int | None = None
    epochs: int | None = None
    first_block: Block | None = None  # the first step alone: tracing, compilation, allocation
    blocks: list[Block] = field(default_factory=list)  # steady-state blocks, in order
    warmup_blocks: list[Block] = field(default_factory=list)  # timed before the profile's warm-up ended (ci)
    step_losses: list[float | None] = field(default_factory=list)  # training loss of every step (null: not finite)
    latencies_s: list[float] = field(default_factory=list)  # steps (infer: calls) timed one by one
    train_flops_per_sample: int | None = None  # analytic, from the spec (see WorkloadSpec.train_flops)
    scenario: str = "train"  # one of SCENARIOS; infer: blocks and latencies time calls of the inference path
    width: int | None = None  # the model's width (WorkloadSpec.width); None: the workload has no width axis
    precision: str = "fp32"  # as asked (adapters.numerics.PRECISIONS); settings["precision"] says how the framework applied it
    flops_per_sample: int | None = None  # of what the blocks time: a training step's, or a forward pass's (infer)
    # infer: the inference path's outputs on its first batch against the NumPy reference, largest
    # difference relative to the reference's largest value (at least 1)
    reference_error: float | None = None
    evaluations: list[Evaluation] = field(default_factory=list)
    target_accuracy: float | None = None
    final_test_accuracy: float | None = None
    steps_to_target: int | None = None  # first evaluated step with accuracy >= target
    time_to_target_s: float | None = None  # timed training seconds until then
    rss_after_import_bytes: int | None = None
    rss_after_build_bytes: int | None = None
    peak_rss_bytes: int | None = None  # the child process's own high-water mark
    device_peak_bytes: int | None = None  # framework's device allocator peak (GPU only)
    # GPU memory of the trial's processes as the driver counts them (NVML, sampled by the parent; harness.gpu_memory)
    device_process_peak_bytes: int | None = None
    machine_gflops: float | None = None  # the parent's reference matmul just before the trial (harness.peak.machine_speed)
    data_feeding: str = ("device-resident batches, staged per epoch in the harness's order, "
                         "staging untimed; trailing partial batch dropped")
    started_at: str = ""
    finished_at: str = ""
    wall_seconds: float | None = None  # whole child, including imports and evaluation
    executor: str = "local"  # how the run placed it: local (this machine, in order) or ray
    node: NodeIdentity | None = None  # the machine it ran on
    attempt: int = 1  # 2 and up: measured again after an interrupted or node-lost attempt (set aside, kept)
    budget_s: float | None = None  # the trial's training budget (timed training seconds); None: none
    stopped_by: str = ""  # what ended training: one of workloads.profiles.STOPS ("" where it did not end)
    # Where the trial's time went, seconds by phase (PHASES): measured in the child, and for
    # `probe` and `end` by the parent that launched it.
    phases: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def problem(self) -> str | None:
        """The first value that makes no sense for a record (its types are checked on reading),
        named by its field, or None. Reports divide and take logarithms of these figures."""
        if self.schema_version != SCHEMA_VERSION:
            return f"field schema_version is {self.schema_version}; this version of dlbench reads {SCHEMA_VERSION}"
        if self.status not in STATUSES:
            return f"field status is {self.status!r}; expected one of: {', '.join(STATUSES)}"
        if self.scenario not in SCENARIOS:
            return f"field scenario is {self.scenario!r}; expected one of: {', '.join(SCENARIOS)}"
        if self.precision not in PRECISIONS:
            return f"field precision is {self.precision!r}; expected one of: {', '.join(PRECISIONS)}"
        if self.stopped_by and self.stopped_by not in STOPS:
            return f"field stopped_by is {self.stopped_by!r}; expected one of: {', '.join(STOPS)}"
        unknown = next((name for name in self.phases if name not in PHASES), None)
        if unknown is not None:
            return f"field phases has {unknown!r}; expected names from: {', '.join(PHASES)}"
        if self.executor not in EXECUTORS:
            return f"field executor is {self.executor!r}; expected one of: {', '.join(EXECUTORS)}"
        for name, value in (("started_at", self.started_at), ("finished_at", self.finished_at)):
            if value and not _iso_time(value):
                return f"field {name} is {value!r}; expected an ISO 8601 time such as 2026-11-29T05:36:13+00:00"
        checks: list[tuple[str, object, str]] = [
            ("threads", self.threads, "count"), ("repeat", self.repeat, "index"), ("batch_size", self.batch_size, "count"),
            ("steps_per_epoch", self.steps_per_epoch, "index"), ("epochs", self.epochs, "index"),
            ("train_samples", self.train_samples, "index"), ("test_samples", self.test_samples, "index"),
            ("param_count", self.param_count, "index"), ("spec_param_count", self.spec_param_count, "index"),
            ("train_flops_per_sample", self.train_flops_per_sample, "index"),
            ("flops_per_sample", self.flops_per_sample, "index"), ("width", self.width, "count"),
            ("reference_error", self.reference_error, "amount"),
            ("target_accuracy", self.target_accuracy, "fraction"),
            ("final_test_accuracy", self.final_test_accuracy, "fraction"),
            ("steps_to_target", self.steps_to_target, "index"), ("time_to_target_s", self.time_to_target_s, "amount"),
            ("rss_after_import_bytes", self.rss_after_import_bytes, "index"),
            ("rss_after_build_bytes", self.rss_after_build_bytes, "index"),
            ("peak_rss_bytes", self.peak_rss_bytes, "index"), ("device_peak_bytes", self.device_peak_bytes, "index"),
            ("device_process_peak_bytes", self.device_process_peak_bytes, "index"),
            ("machine_gflops", self.machine_gflops, "rate"), ("wall_seconds", self.wall_seconds, "amount"),
            ("attempt", self.attempt, "count"), ("budget_s", self.budget_s, "rate"),
        ]
        checks += [(f"phases.{name}", seconds, "amount") for name, seconds in self.phases.items()]
        for name, block in [("first_block", self.first_block)] + [(f"blocks[{i}]", b) for i, b in enumerate(self.blocks)] \
                + [(f"warmup_blocks[{i}]", b) for i, b in enumerate(self.warmup_blocks)]:
            if block is not None:
                checks += [(f"{name}.steps", block.steps, "count"), (f"{name}.seconds", block.seconds, "rate"),
                           (f"{name}.first_step", block.first_step, "index"), (f"{name}.epoch", block.epoch, "index")]
        for i, e in enumerate(self.evaluations):
            checks += [(f"evaluations[{i}].step", e.step, "index"), (f"evaluations[{i}].epoch", e.epoch, "amount"),
                       (f"evaluations[{i}].train_seconds", e.train_seconds, "amount"),
                       (f"evaluations[{i}].test_accuracy", e.test_accuracy, "fraction")]
        checks += [(f"latencies_s[{i}]", v, "rate") for i, v in enumerate(self.latencies_s)]
        for name, value, kind in checks:
            if value is not None and not _VALID[kind][0](value):
                return f"field {name} is {value!r}; expected {_VALID[kind][1]}"
        return None

    @property
    def to_measure_again(self) -> bool:
        """Whether `--resume` reruns this trial: it was interrupted, or its node was lost."""
        return self.status == "interrupted" or (self.status == "error" and self.reason.startswith(NODE_LOST))

    def place(self, placement: Placement) -> "TrialRecord":
        self.executor, self.node, self.attempt = placement.executor, placement.node, placement.attempt
        return self

    @classmethod
    def not_run(cls, trial: TrialSpec, run_id: str, status: str, reason: str) -> "TrialRecord":
        """A record for a trial that produced none itself: skipped, crashed or timed out."""
        return cls(schema_version=SCHEMA_VERSION, trial_id=trial.trial_id, run_id=run_id,
                   framework=trial.framework, variant=trial.variant, label=trial.label,
                   workload=trial.workload, dataset=trial.dataset, profile=trial.profile,
                   device=trial.device, threads=trial.threads, seed=trial.seed, repeat=trial.repeat,
                   status=status, reason=reason, scenario=trial.scenario, batch_size=trial.batch_size,
                   width=trial.width, precision=trial.precision, budget_s=trial.budget_s)
