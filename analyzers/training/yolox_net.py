"""The YOLOX-Nano network in plain torch, shaped so the pack's COCO ONNX weights load into it.

Written for the project from the published architecture (CSPDarknet with depthwise convolutions,
PAFPN, decoupled head; depth 0.33, width 0.25, SiLU). The pack's ONNX has batch norm folded into the
convolutions, so every convolution here carries a bias and there is no batch norm: fine-tuning keeps
the backbone frozen (as measured: training all layers destroyed person detection) and trains the
neck and head. ``load_onnx_weights`` copies the 113 convolutions in execution order, checking every
shape; ``forward`` returns the raw head output the detector runtime decodes ([B, N, 5 + C]: dx, dy,
log w, log h, objectness and class scores, the last two after a sigmoid at export).

Imported only on the training path (needs the ``train`` extra: torch, onnx).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch  # type: ignore[import-not-found,unused-ignore]
from torch import nn  # type: ignore[import-not-found,unused-ignore]

STRIDES = (8, 16, 32)


class ConvAct(nn.Module):  # type: ignore[misc,unused-ignore]
    """Convolution (batch norm folded into its bias) + SiLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=True)
        self.act = nn.SiLU()

    def forward(self, x: Any) -> Any:
        return self.act(self.conv(x))


class DWConv(nn.Module):  # type: ignore[misc,unused-ignore]
    """Depthwise 3x3 then pointwise 1x1."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.dconv = ConvAct(cin, cin, kernel, stride, groups=cin)
        self.pconv = ConvAct(cin, cout, 1)

    def forward(self, x: Any) -> Any:
        return self.pconv(self.dconv(x))


class Bottleneck(nn.Module):  # type: ignore[misc,unused-ignore]
    def __init__(self, cin: int, cout: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1 = ConvAct(cin, cout, 1)
        self.conv2 = DWConv(cout, cout, 3)
        self.add = shortcut and cin == cout

    def forward(self, x: Any) -> Any:
        y = self.conv2(self.conv1(x))
        return y + x if self.add else y


class CSPLayer(nn.Module):  # type: ignore[misc,unused-ignore]
    def __init__(self, cin: int, cout: int, n: int, shortcut: bool = True) -> None:
        super().__init__()
        hidden = cout // 2
        self.conv1 = ConvAct(cin, hidden, 1)
        self.conv2 = ConvAct(cin, hidden, 1)
        self.m = nn.Sequential(*[Bottleneck(hidden, hidden, shortcut) for _ in range(n)])
        self.conv3 = ConvAct(2 * hidden, cout, 1)

    def forward(self, x: Any) -> Any:
        # conv1 and conv2 before the bottlenecks: the order the ONNX graph runs them in.
        a, b = self.conv1(x), self.conv2(x)
        return self.conv3(torch.cat([self.m(a), b], 1))


class SPP(nn.Module):  # type: ignore[misc,unused-ignore]
    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        hidden = cin // 2
        self.conv1 = ConvAct(cin, hidden, 1)
        self.pools = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in kernels])
        self.conv2 = ConvAct(hidden * (len(kernels) + 1), cout, 1)

    def forward(self, x: Any) -> Any:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [p(x) for p in self.pools], 1))


class Focus(nn.Module):  # type: ignore[misc,unused-ignore]
    """Space to depth (2x2 -> channels), then a 3x3 convolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvAct(cin * 4, cout, 3)

    def forward(self, x: Any) -> Any:
        tl, bl = x[..., ::2, ::2], x[..., 1::2, ::2]
        tr, br = x[..., ::2, 1::2], x[..., 1::2, 1::2]
        return self.conv(torch.cat([tl, bl, tr, br], 1))


class Backbone(nn.Module):  # type: ignore[misc,unused-ignore]
    """CSPDarknet (nano): strides 8, 16, 32 -> 64, 128, 256 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Focus(3, 16)
        self.dark2 = nn.Sequential(DWConv(16, 32, 3, 2), CSPLayer(32, 32, 1))
        self.dark3 = nn.Sequential(DWConv(32, 64, 3, 2), CSPLayer(64, 64, 3))
        self.dark4 = nn.Sequential(DWConv(64, 128, 3, 2), CSPLayer(128, 128, 3))
        self.dark5 = nn.Sequential(DWConv(128, 256, 3, 2), SPP(256, 256), CSPLayer(256, 256, 1, False))

    def forward(self, x: Any) -> tuple[Any, Any, Any]:
        x = self.dark2(self.stem(x))
        c3 = self.dark3(x)
        c4 = self.dark4(c3)
        return c3, c4, self.dark5(c4)


class Neck(nn.Module):  # type: ignore[misc,unused-ignore]
    """PAFPN: top-down then bottom-up fusion of the three levels."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = ConvAct(256, 128, 1)
        self.c3_p4 = CSPLayer(256, 128, 1, False)
        self.reduce_conv1 = ConvAct(128, 64, 1)
        self.c3_p3 = CSPLayer(128, 64, 1, False)
        self.bu_conv2 = DWConv(64, 64, 3, 2)
        self.c3_n3 = CSPLayer(128, 128, 1, False)
        self.bu_conv1 = DWConv(128, 128, 3, 2)
        self.c3_n4 = CSPLayer(256, 256, 1, False)

    def forward(self, feats: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        c3, c4, c5 = feats
        fpn0 = self.lateral_conv0(c5)
        f = self.c3_p4(torch.cat([self.up(fpn0), c4], 1))
        fpn1 = self.reduce_conv1(f)
        p3 = self.c3_p3(torch.cat([self.up(fpn1), c3], 1))
        p4 = self.c3_n3(torch.cat([self.bu_conv2(p3), fpn1], 1))
        p5 = self.c3_n4(torch.cat([self.bu_conv1(p4), fpn0], 1))
        return p3, p4, p5


class HeadLevel(nn.Module):  # type: ignore[misc,unused-ignore]
    """The decoupled head of one level: classes on one branch, box and objectness on the other."""

    def __init__(self, cin: int, num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.stem = ConvAct(cin, hidden, 1)
        self.cls_convs = nn.Sequential(DWConv(hidden, hidden, 3), DWConv(hidden, hidden, 3))
        self.cls_pred = nn.Conv2d(hidden, num_classes, 1)
        self.reg_convs = nn.Sequential(DWConv(hidden, hidden, 3), DWConv(hidden, hidden, 3))
        self.reg_pred = nn.Conv2d(hidden, 4, 1)
        self.obj_pred = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: Any) -> Any:
        x = self.stem(x)
        cls = self.cls_pred(self.cls_convs(x))
        reg_feat = self.reg_convs(x)
        return torch.cat([self.reg_pred(reg_feat), self.obj_pred(reg_feat), cls], 1)


class YoloxNano(nn.Module):  # type: ignore[misc,unused-ignore]
    """Image [B, 3, H, W] BGR 0..255 (H, W multiples of 32) -> [B, N, 5 + C] raw logits (training), or
    with ``export=True`` objectness and classes after a sigmoid, as the runtime's decoder reads them."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.class_names: list[str] = []
        self.backbone = Backbone()
        self.neck = Neck()
        self.heads = nn.ModuleList([HeadLevel(c, num_classes) for c in (64, 128, 256)])
        self.export = False

    def forward(self, x: Any) -> Any:
        outs = []
        for head, feat in zip(self.heads, self.neck(self.backbone(x)), strict=True):
            out = head(feat)
            outs.append(out.flatten(2))  # [B, 5 + C, h*w], cells row by row as the decoder expects
        raw = torch.cat(outs, 2).permute(0, 2, 1)
        if self.export:
            raw = torch.cat([raw[..., :4], raw[..., 4:].sigmoid()], -1)
        return raw

    def freeze_backbone(self) -> None:
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def convs_in_order(self, size: tuple[int, int] = (64, 64)) -> list[nn.Conv2d]:
        """Every convolution in the order a forward pass runs it (the ONNX graph's order)."""
        order: list[nn.Conv2d] = []
        hooks = [
            m.register_forward_pre_hook(lambda mod, _inp: order.append(mod))
            for m in self.modules()
            if isinstance(m, nn.Conv2d)
        ]
        try:
            with torch.no_grad():
                self(torch.zeros(1, 3, size[1], size[0]))
        finally:
            for h in hooks:
                h.remove()
        return order


def onnx_convs(path: Path) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(node name, weight, bias) of every Conv node of an ONNX graph, in graph order."""
    import onnx  # type: ignore[import-not-found,unused-ignore]
    from onnx import numpy_helper  # type: ignore[import-not-found,unused-ignore]

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight = inits.get(node.input[1])
        if weight is None:
            raise ValueError(f"{path.name}: Conv {node.name} has no stored weight")
        bias = inits.get(node.input[2]) if len(node.input) > 2 else None
        convs.append((node.name, weight, bias))
    return convs


# COCO class ids that seed a new class's prediction channel (same object, another name).
COCO_SEEDS = {"person": 0, "phone": 67, "cell phone": 67}


def load_onnx_weights(model: YoloxNano, path: Path, coco_classes: list[str] | None = None) -> int:
    """Copy the pack's COCO weights into ``model`` by convolution order; class prediction layers are
    seeded per class from the COCO class of the same meaning (``COCO_SEEDS``) and otherwise keep
    their fresh initialisation. Returns how many convolutions were copied whole."""
    ours = model.convs_in_order()
    theirs = onnx_convs(path)
    if len(ours) != len(theirs):
        raise ValueError(f"{path.name}: {len(theirs)} convolutions, the YOLOX-Nano network has {len(ours)}")
    copied = 0
    cls_preds = {id(h.cls_pred) for h in model.heads}
    names = list(coco_classes or [])
    for conv, (node, weight, bias) in zip(ours, theirs, strict=True):
        if id(conv) in cls_preds:
            _seed_classes(conv, weight, bias, names, model)
            continue
        if tuple(conv.weight.shape) != weight.shape:
            raise ValueError(
                f"{path.name}: convolution {node} is {weight.shape}, expected {tuple(conv.weight.shape)}"
            )
        assert conv.bias is not None  # every convolution here has one (batch norm folded)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            if bias is not None:
                conv.bias.copy_(torch.from_numpy(bias.copy()))
            else:
                conv.bias.zero_()
        copied += 1
    return copied


def _seed_classes(
    conv: nn.Conv2d, weight: np.ndarray, bias: np.ndarray | None, coco: list[str], model: YoloxNano
) -> None:
    """Prior for fresh classes (rare objects: low initial score), COCO rows for known ones."""
    assert conv.bias is not None
    with torch.no_grad():
        nn.init.normal_(conv.weight, std=0.01)
        conv.bias.fill_(-4.6)  # sigmoid -> 0.01
        for i, name in enumerate(model.class_names):
            seed = COCO_SEEDS.get(name)
            if seed is None and name in coco:
                seed = coco.index(name)
            if seed is not None and seed < weight.shape[0]:
                conv.weight[i].copy_(torch.from_numpy(weight[seed].copy()))
                if bias is not None:
                    conv.bias[i] = float(bias[seed])


def build(class_names: list[str], coco_onnx: Path | None, coco_classes: list[str] | None = None) -> YoloxNano:
    """A YOLOX-Nano for ``class_names``, initialised from the COCO ONNX when given."""
    model = YoloxNano(len(class_names))
    model.class_names = list(class_names)
    if coco_onnx is not None:
        load_onnx_weights(model, coco_onnx, coco_classes)
    return model
