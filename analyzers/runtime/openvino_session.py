"""OpenVINO on the CPU behind the part of onnxruntime's ``InferenceSession`` the analyzers use.

``get_inputs()`` / ``get_outputs()`` (objects with ``.name``, ``.shape``, ``.type`` as onnxruntime
spells them: ``tensor(float)``; a dynamic dimension is ``None``), ``run(output_names_or_None, feeds)``
-> list of numpy arrays (copies, safe to keep), and ``get_providers()`` -> ``["OpenVINO"]``.

The ONNX file is compiled for the CPU in fp32 (a CPU with AVX-512 BF16, such as the build
machine's, would otherwise run bf16 and the outputs would drift from onnxruntime's), with the LATENCY
hint, one stream and ``threads`` inference threads (0 = OpenVINO's default: every core). A model
with dynamic dimensions (symbolic H/W or batch) is compiled again for each input shape it meets,
with the dimensions made static, which ran 5-15 % faster than OpenVINO's dynamic shapes on the build
machine; past ``MAX_SHAPES`` shapes the rest run on the dynamic compile.

Concurrency matches onnxruntime's: ``run`` may be called from several threads at once, and each
call gets ``threads`` threads of its own. One compiled model runs one inference at a time (a second
request on it waits), so each concurrent caller borrows a compiled model of its own from a pool per
shape, which grows to the number of callers that ever ran at once (the inference workers: one per
core). Threads are not pinned to cores: the pooled compiles would pin theirs to the same core
(measured with 2 workers x 1 thread: twice as slow).
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PROVIDER = "OpenVINO"
PIN = False  # see the module's docstring

# OpenVINO element type names -> onnxruntime's type strings.
OV_TYPES = {
    "f32": "tensor(float)",
    "f16": "tensor(float16)",
    "bf16": "tensor(bfloat16)",
    "f64": "tensor(double)",
    "i64": "tensor(int64)",
    "i32": "tensor(int32)",
    "i16": "tensor(int16)",
    "i8": "tensor(int8)",
    "u8": "tensor(uint8)",
    "u16": "tensor(uint16)",
    "u32": "tensor(uint32)",
    "u64": "tensor(uint64)",
    "boolean": "tensor(bool)",
}
NUMPY_OF = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


@functools.cache
def openvino_available() -> bool:
    """True when the ``openvino`` package imports (``pip install 'vigil[openvino]'``)."""
    try:
        importlib.import_module("openvino")
    except ImportError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class NodeArg:
    """A graph input or output, described as onnxruntime's ``NodeArg`` describes it."""

    name: str
    shape: list[int | str | None]
    type: str


def _node(port: Any) -> NodeArg:
    shape = port.get_partial_shape()
    dims: list[int | str | None] = (
        [d.get_length() if d.is_static else None for d in shape] if shape.rank.is_static else []
    )
    kind = port.get_element_type().get_type_name()
    return NodeArg(port.get_any_name(), dims, OV_TYPES.get(kind, f"tensor({kind})"))


def compile_config(threads: int, pin: bool) -> dict[str, Any]:
    """Compile properties: fp32, LATENCY (one stream: batch 1 is the common case), ``threads``."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    config: dict[str, Any] = {
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        hints.inference_precision: ov.Type.f32,
        props.num_streams: 1,
        hints.enable_cpu_pinning: pin,
    }
    if threads > 0:
        config[props.inference_num_threads] = threads
    return config


Shapes = tuple[tuple[int, ...], ...]  # the shape of every input, in the graph's order


class OpenVinoSession:
    """An ONNX model compiled by OpenVINO for the CPU, used like an onnxruntime session.

    ``static_shapes``: compile per input shape (see the module's docstring); ``pin``: pin the
    inference threads to cores (default :data:`PIN`).
    """

    MAX_SHAPES = 8

    def __init__(
        self, path: Path, threads: int = 0, static_shapes: bool = True, pin: bool | None = None
    ) -> None:
        import openvino as ov

        self.path = Path(path)
        self.threads = threads
        self._core = ov.Core()
        self._model = self._core.read_model(str(self.path))
        self._config = compile_config(threads, PIN if pin is None else pin)
        self._inputs = [_node(p) for p in self._model.inputs]
        self._outputs = [_node(p) for p in self._model.outputs]
        self._output_index = {o.name: i for i, o in enumerate(self._outputs)}
        for i, port in enumerate(self._model.outputs):  # every name a tensor goes by
            for name in port.get_names():
                self._output_index.setdefault(name, i)
        self._static = static_shapes and any(d is None for i in self._inputs for d in i.shape)
        self._lock = threading.Lock()
        self._compile_lock = threading.Lock()
        self._dynamic_only: set[Shapes] = set()
        # Idle infer requests per input shape (None: the model as read, for any shape it takes).
        self._idle: dict[Shapes | None, list[Any]] = {None: [self._compile(None)]}  # a bad file fails here
        self.compiled = 1

    def _compile(self, shapes: Shapes | None) -> Any:
        with self._compile_lock:
            model = self._model
            if shapes is not None:
                model = self._model.clone()
                model.reshape({i.name: list(s) for i, s in zip(self._inputs, shapes, strict=True)})
            compiled = self._core.compile_model(model, "CPU", self._config)
        return compiled.create_infer_request()

    def _take(self, shapes: Shapes) -> tuple[Shapes | None, Any]:
        with self._lock:
            key: Shapes | None = shapes
            if (
                not self._static
                or shapes in self._dynamic_only
                or (shapes not in self._idle and len(self._idle) > self.MAX_SHAPES)
            ):
                key = None
            idle = self._idle.setdefault(key, [])
            if idle:
                return key, idle.pop()
            self.compiled += 1
        try:
            return key, self._compile(key)
        except Exception:
            if key is None:
                raise
            # A graph that cannot be made static at this shape runs it on the dynamic compile.
            log.warning(
                "%s: no static compile for input shapes %s; running them dynamic", self.path.name, key
            )
            with self._lock:
                self.compiled -= 1
                self._dynamic_only.add(key)
                if not self._idle[key]:
                    del self._idle[key]
            return self._take(shapes)

    def _give(self, key: Shapes | None, request: Any) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(request)

    def get_inputs(self) -> list[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [PROVIDER]

    def _check(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Refuse what onnxruntime refuses: a missing or unknown input, a wrong element type or rank
        (OpenVINO would quietly convert), or a fixed dimension of the wrong size."""
        known = {i.name: i for i in self._inputs}
        unknown = sorted(set(feeds) - set(known))
        if unknown:
            raise ValueError(f"{self.path.name}: no input named {unknown}; the inputs are {sorted(known)}")
        missing = sorted(set(known) - set(feeds))
        if missing:
            raise ValueError(f"{self.path.name}: missing inputs {missing}")
        checked: dict[str, np.ndarray] = {}
        for name, value in feeds.items():
            node = known[name]
            array = np.asarray(value)
            want = NUMPY_OF.get(node.type)
            if want is not None and array.dtype != want:
                raise ValueError(f"{self.path.name}: input {name!r} is {node.type}, got numpy {array.dtype}")
            if len(array.shape) != len(node.shape) or any(
                d is not None and d != s for d, s in zip(node.shape, array.shape, strict=True)
            ):
                raise ValueError(f"{self.path.name}: input {name!r} is {node.shape}, got {list(array.shape)}")
            checked[name] = array
        return checked

    def run(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any], run_options: Any = None
    ) -> list[np.ndarray]:
        """Outputs in the order asked for (all of them for None), as numpy arrays of their own."""
        feeds = self._check(input_feed)
        try:
            wanted = (
                list(range(len(self._outputs)))
                if output_names is None
                else [self._output_index[n] for n in output_names]
            )
        except KeyError as exc:
            raise ValueError(f"{self.path.name}: no output named {exc.args[0]!r}") from None
        key, request = self._take(tuple(feeds[i.name].shape for i in self._inputs))
        try:
            result = request.infer(feeds)  # share_outputs=False: the arrays are copies
            return [np.asarray(result[i]) for i in wanted]
        finally:
            self._give(key, request)
