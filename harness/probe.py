"""The child side of an equivalence check: `python -m harness.probe REQUEST.json RESULT_DIR`.

For each requested workload, builds the adapter's model from the spec's initial weights and saves
(as `<workload>.npz`, readable by any NumPy) what `harness.equivalence` compares with the NumPy
reference: the parameter count, the output of the model cut after each layer that changes shape
or holds weights, on a fixed batch, the whole model's output on that batch through its inference
path (`stage_inference`/`infer`, what the infer scenario times), and the losses of the first
optimizer steps on fixed batches.
Untimed; standard library and NumPy only, besides the adapter's own framework.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import numpy as np

from adapters import environment_versions, load_adapter_class
from adapters.numerics import DEFAULT_PRECISION, Numerics
from adapters.base import SkipTrial
from harness import lifeline
from harness.lifeline import tie_to_parent
from harness.threads import pin_to_cores
from workloads import get_workload, reference
from workloads.spec import WorkloadSpec

CUT_KINDS = ("dense", "conv2d", "maxpool", "flatten")


def cut_points(spec: WorkloadSpec) -> list[int]:
    """Layer counts after which the model's output is compared (each weighted or reshaping layer)."""
    return [i + 1 for i, layer in enumerate(spec.layers) if layer.kind in CUT_KINDS]


def probe(adapter_cls: type, variant: str, threads: int, workload: str, seed: int, steps: int,
          inference_only: bool = False, precision: str = DEFAULT_PRECISION, layers: bool = True,
          device: str = "cpu") -> dict:
    """The arrays of one workload in `precision`; `inference_only`: the parameter count and the
    inference path's output alone (a variant that is an inference path of another, which has no
    training); `layers`: also each prefix model's output (without: the whole model's alone). A
    precision the adapter cannot do raises its SkipTrial."""
    numerics = Numerics(precision)
    spec = get_workload(workload)
    weights = spec.init_weights(seed)
    # The forward batch has the training batch's shape: compiling variants (torch.compile behind
    # Keras) would otherwise see a new batch size, recompile with dynamic shapes, and measure that.
    x_fixed = reference.forward_batch(spec, seed)
    out: dict = {"layers_probed": np.array(layers and not inference_only)}
    for cut in cut_points(spec) if layers and not inference_only else []:
        adapter = adapter_cls(variant, device, threads, numerics)
        adapter.setup()
        adapter.build(reference.prefix(spec, cut), reference.weights_for(spec, weights, cut))
        out[f"layer{cut}"] = np.asarray(adapter.predict(x_fixed), np.float32)
    adapter = adapter_cls(variant, device, threads, numerics)
    adapter.setup()
    adapter.build(spec, weights)
    adapter.stage_inference(x_fixed)
    handle = adapter.infer(0)
    adapter.wait([handle])
    out["inference"] = np.asarray(adapter.outputs(handle), np.float32)
    if inference_only:
        out["param_count"] = np.array(adapter.param_count())
        return out
    adapter = adapter_cls(variant, device, threads, numerics)
    adapter.setup()
    adapter.build(spec, weights)
    out["param_count"] = np.array(adapter.param_count())
    batches = reference.probe_batches(spec, seed, steps)
    adapter.stage(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
    handles = [adapter.train_step(i) for i in range(steps)]
    adapter.synchronize()
    out["losses"] = np.asarray(adapter.loss_values(handles), np.float64)
    return out


def main(argv: list[str]) -> int:
    tie_to_parent()
    request_path, result_dir = argv
    request = json.loads(Path(request_path).read_text())
    out_dir = Path(result_dir)
    pin_to_cores(request["threads"])
    adapter_cls = load_adapter_class(request["adapter"])
    meta = {"versions": {**environment_versions(request["framework"], request["variant"]),
                         "numpy": np.__version__}, "python": sys.executable, "errors": {}, "skipped": {}}
    for workload in request["workloads"]:
        try:
            arrays = probe(adapter_cls, request["variant"], request["threads"], workload, request["seed"],
                           request["steps"], request.get("inference_only", False),
                           request.get("precision", DEFAULT_PRECISION), request.get("layers", True),
                           request.get("device", "cpu"))
            np.savez(out_dir / f"{workload}.npz", **arrays)
        except SkipTrial as exc:
            meta["skipped"][workload] = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported per workload, the others still run
            traceback.print_exc()
            meta["errors"][workload] = f"{type(exc).__name__}: {exc}"
    (out_dir / "meta.json").write_text(json.dumps(meta))
    return 0


if __name__ == "__main__":
    lifeline.leave(main(sys.argv[1:]))
