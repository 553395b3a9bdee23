"""Model sessions: execution providers chosen TensorRT -> CUDA -> CPU; on the CPU, onnxruntime or
OpenVINO, whichever was measured faster for the model.

Every model opens through :func:`open_session`. With a GPU provider the session is onnxruntime's,
always. On the CPU, ``VIGIL_CPU_RUNTIME`` picks the runtime:

- ``auto`` (default): OpenVINO for the models in :data:`OPENVINO_FASTER` (measured more than 10 %
  faster there) when the ``openvino`` package is installed (``pip install 'vigil[openvino]'``),
  onnxruntime for everything else;
- ``onnxruntime``: onnxruntime always;
- ``openvino``: OpenVINO for every model (an error when the package is missing).

Both runtimes give the same numbers (fp32; tests/test_runtime_backends.py compares them) behind the
same interface: ``get_inputs()``, ``get_outputs()``, ``run(None, feeds)``, ``get_providers()``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import onnxruntime as ort

from analyzers.runtime.openvino_session import OpenVinoSession, openvino_available

log = logging.getLogger(__name__)

PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
CPU_RUNTIME_ENV = "VIGIL_CPU_RUNTIME"
CpuRuntime = Literal["auto", "onnxruntime", "openvino"]
CPU_RUNTIMES: tuple[CpuRuntime, ...] = ("auto", "onnxruntime", "openvino")

# The ONNX files (by name) that ``auto`` runs on OpenVINO: those where OpenVINO (fp32) took more than
# 10 % less time than onnxruntime at the model's production size on the 2-core CPU of the build
# machine (AMD EPYC, AVX-512), both as the gateway runs models (1-thread session, one inference
# worker per core) and at 2 threads. Measured with `python tests/benchmarks/bench_runtimes.py`
# (onnxruntime 1.32.0, openvino 2026.4.1; second of two runs on an idle machine; the table is in the
# README's "CPU runtime: onnxruntime or OpenVINO" section). onnxruntime ms / OpenVINO ms:
#   pose_landmark_lite.onnx (BlazePose 256x256): 1.51 gateway, 1.52 at 2 threads -> OpenVINO
# and onnxruntime for the rest:
#   YOLOX (yolox_nano, ppe, cigarette, phone) at 416x416, 640x352, 640x480: 0.67-0.83 gateway,
#     0.76-0.95 at 2 threads (onnxruntime faster)
#   MoveNet MultiPose 512x384: 1.10 gateway, 1.08 at 2 threads (0.95-1.04 gateway in three earlier
#     runs): under the 10 % bar
#   EfficientNet-Lite0 batch 1/8/32: 0.84-0.97; classifier cards batch 1/8: 0.39-1.03
OPENVINO_FASTER: frozenset[str] = frozenset({"pose_landmark_lite.onnx"})


class Session(Protocol):
    """What the analyzers use of a session; onnxruntime's and :class:`OpenVinoSession` fit it."""

    def get_inputs(self) -> Sequence[Any]: ...

    def get_outputs(self) -> Sequence[Any]: ...

    def get_providers(self) -> list[str]: ...

    def run(self, output_names: Any, input_feed: Mapping[str, Any]) -> list[Any]: ...


def choose_providers(available: list[str] | None = None) -> list[str]:
    """The usable providers in order of preference; CPU is always last and always there."""
    have = set(ort.get_available_providers() if available is None else available)
    chosen = [p for p in PREFERENCE if p in have]
    return chosen or ["CPUExecutionProvider"]


def cpu_runtime_setting(environ: Mapping[str, str] | None = None) -> CpuRuntime:
    """``VIGIL_CPU_RUNTIME``: auto (default), onnxruntime or openvino; anything else raises ValueError."""
    raw = (os.environ if environ is None else environ).get(CPU_RUNTIME_ENV, "").strip().lower()
    if not raw:
        return "auto"
    if raw not in CPU_RUNTIMES:
        raise ValueError(f"{CPU_RUNTIME_ENV}={raw!r}: expected one of {', '.join(CPU_RUNTIMES)}")
    return cast(CpuRuntime, raw)


def choose_runtime(
    path: Path,
    setting: CpuRuntime,
    providers: Sequence[str],
    have_openvino: bool | None = None,
) -> Literal["onnxruntime", "openvino"]:
    """Which runtime opens ``path``: onnxruntime whenever a GPU provider is chosen; on the CPU, the
    setting, where ``auto`` means OpenVINO only for the files measured faster on it."""
    if providers and providers[0] != "CPUExecutionProvider":
        return "onnxruntime"  # the GPU path is onnxruntime's TensorRT/CUDA providers, whatever is set
    if setting == "onnxruntime":
        return "onnxruntime"
    if setting == "auto" and Path(path).name not in OPENVINO_FASTER:
        return "onnxruntime"
    if openvino_available() if have_openvino is None else have_openvino:
        return "openvino"
    if setting == "openvino":
        raise RuntimeError(
            f"{CPU_RUNTIME_ENV}=openvino, but the openvino package is not installed "
            "(pip install 'vigil[openvino]')"
        )
    return "onnxruntime"  # auto without openvino


def open_session(path: Path, threads: int = 0, runtime: CpuRuntime | None = None) -> Session:
    """Open a session; ``threads`` = 0 lets the runtime use every core. ``runtime`` overrides
    ``VIGIL_CPU_RUNTIME`` (see the module's docstring)."""
    providers = choose_providers()
    chosen = choose_runtime(path, runtime or cpu_runtime_setting(), providers)
    session: Session
    if chosen == "openvino":
        session = OpenVinoSession(path, threads)
    else:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    log.info("model %s runs on %s", Path(path).name, session.get_providers()[0])
    return session
