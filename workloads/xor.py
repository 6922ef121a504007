"""XOR: the four points as one batch. Measures per-step framework overhead, not arithmetic."""
from workloads.spec import Optimizer, WorkloadSpec, act, dense

SPEC = WorkloadSpec(
    name="xor",
    description="2 -> 8 tanh -> 1 sigmoid, binary cross-entropy, SGD 0.5, the four points as one batch",
    dataset="xor",
    input_shape=(2,),
    classes=2,
    layers=(dense(8), act("tanh"), dense(1)),
    loss="binary_cross_entropy",
    output="sigmoid",
    optimizer=Optimizer("sgd", learning_rate=0.5),
    batch_size=4,
    # One epoch is one step over the four points.
    epochs={"smoke": 200, "ci": 200000, "quick": 200000, "full": 20000},  # ci, quick: until their blocks are timed
    target_accuracy={"xor": 1.0},
    shuffle=False,
    # Checked every few steps until all four points are right, so steps-to-converge is exact
    # to this many steps; afterwards only at the end, so timed blocks can grow.
    eval_every_steps=5,
    # A step is a fraction of a millisecond: its latency distribution is measured apart.
    latency_steps=1000,
    datasets=("xor",),
    batch_axis=False,  # the four points are the batch
)
