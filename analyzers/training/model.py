"""The small network: a depthwise-separable CNN (MobileNet-v1 style, ~115k parameters at width 1).

Imported only on the training path (needs the ``train`` extra: torch)."""

from __future__ import annotations

from typing import Any

import torch  # type: ignore[import-not-found,unused-ignore]
from torch import nn  # type: ignore[import-not-found,unused-ignore]

# (output channels, stride) after a stride-2 stem of 24 channels.
BLOCKS: tuple[tuple[int, int], ...] = (
    (48, 1),
    (64, 2),
    (64, 1),
    (96, 2),
    (96, 1),
    (128, 2),
    (192, 1),
    (256, 1),
)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> list[Any]:
    return [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class SmallNet(nn.Module):  # type: ignore[misc,unused-ignore]
    """Image [B, 3, H, W] (normalised as the card says) -> class logits [B, C]; any H, W >= 32."""

    def __init__(self, num_classes: int, width: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        stem = max(8, int(24 * width))
        layers: list[Any] = _conv_bn(3, stem, 3, 2)
        cin = stem
        for cout, stride in BLOCKS:
            cout = max(8, int(cout * width))
            layers += _conv_bn(cin, cin, 3, stride, groups=cin)  # depthwise
            layers += _conv_bn(cin, cout, 1, 1)  # pointwise
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes))

    def forward(self, x: Any) -> Any:
        return self.head(self.pool(self.features(x)))


def count_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def to_input(images: Any, mean: float, std: float) -> Any:
    """[N, H, W, 3] uint8 BGR (numpy) -> normalised float tensor [N, 3, H, W], as the card describes."""
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return (tensor / 255.0 - mean) / std
