"""Model runtime: model cards, onnxruntime sessions and execution-provider choice."""

from analyzers.runtime.batcher import InferenceWorker
from analyzers.runtime.card import ModelCard, ModelCardError, load_card, read_card
from analyzers.runtime.session import choose_providers, open_session

__all__ = [
    "InferenceWorker",
    "ModelCard",
    "ModelCardError",
    "choose_providers",
    "load_card",
    "open_session",
    "read_card",
]
