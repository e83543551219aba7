#!/usr/bin/env python
"""The benchmark suite: every small model, every variant, both runtimes, one table.

    python benchmarks/suite.py [--models KEY...] [--variants NAME...] [--formats tflite onnx]
        [--quick] [--threads N] [--runs N] [--min-secs S] [--max-secs S] [--eval-limit N]
        [--calib-samples N] [--provider cpu|cuda|tensorrt] [--step-timeout S]
        [--workdir DIR] [--out DIR] [--force] [--list]

For each model of the settings table (`--list` prints it): `edgecnn train` on Fashion-MNIST,
`edgecnn prune --sparsity 0.5`, `edgecnn export` of each variant (float32, float16, dynamic,
int8, int16x8, QAT int8, pruned 50%, pruned + QAT int8) in TFLite and ONNX, then
`edgecnn benchmark --out` (LiteRT for .tflite, ONNX Runtime for .onnx, the same threads) and
`edgecnn evaluate --out` on the Fashion-MNIST test split; plus the MobileNets at 224x224 with
random weights (float32 and int8, benchmark only). Then `edgecnn compare` and RESULTS.md.

Every step is the real CLI in a subprocess. Work files go to benchmarks/work/<machine>/
(gitignored); results to benchmarks/results/<machine>/: results.jsonl (the benchmark and
evaluate rows), suite-log.jsonl (the suite's own steps), RESULTS.md and the plot(s).
A step already done with the same settings is skipped (`--force` redoes it); a step that fails
is logged with its reason, and the suite goes on with what does not depend on it.
The code is in benchmarks/suite/; the README section "suite.py" says how long it takes.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(_path))

from suite.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
