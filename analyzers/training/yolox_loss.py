"""The YOLOX training loss with SimOTA label assignment, written for the project from the paper
(Ge et al., 2021, "YOLOX: Exceeding YOLO Series in 2021", section 2.2).

Per image, the candidate cells of a labelled box are those whose centre lies in the box or within
2.5 strides of its centre; the cost of giving a box to a cell is the classification cost plus 3x the
IoU cost (cells in both regions strongly preferred); each box takes its ``k`` cheapest cells, ``k``
being the sum of its 10 best IoUs; a cell claimed twice goes to the cheaper box. Losses: IoU loss
(1 - IoU^2) on the matched cells' boxes (weight 5), objectness BCE on every cell, class BCE on the
matched cells against the IoU-scaled one-hot target; summed and divided by the matched-cell count.

Imported only on the training path (torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch  # type: ignore[import-not-found,unused-ignore]
import torch.nn.functional as F  # type: ignore[import-not-found,unused-ignore]  # noqa: N812

CENTRE_RADIUS = 2.5
IOU_WEIGHT = 5.0


def grid_for(size: tuple[int, int], strides: Sequence[int]) -> tuple[Any, Any]:
    """Cell centres' grid offsets [N, 2] and strides [N], in the head's flattening order."""
    width, height = size
    grids, all_strides = [], []
    for s in strides:
        ys, xs = torch.meshgrid(torch.arange(height // s), torch.arange(width // s), indexing="ij")
        grids.append(torch.stack([xs, ys], -1).reshape(-1, 2).float())
        all_strides.append(torch.full((grids[-1].shape[0],), float(s)))
    return torch.cat(grids), torch.cat(all_strides)


def decode_boxes(raw: Any, grid: Any, strides: Any) -> Any:
    """[B, N, 4] raw (dx, dy, log w, log h) -> xyxy input pixels."""
    xy = (raw[..., :2] + grid) * strides[:, None]
    wh = torch.exp(raw[..., 2:4].clamp(max=10.0)) * strides[:, None]
    return torch.cat([xy - wh / 2, xy + wh / 2], -1)


def box_iou(a: Any, b: Any) -> Any:
    """Pairwise IoU of xyxy boxes [G, 4] x [M, 4] -> [G, M]."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def paired_iou(a: Any, b: Any) -> Any:
    """IoU of row i of ``a`` with row i of ``b``."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter + 1e-9)


@torch.no_grad()  # type: ignore[misc,unused-ignore]
def simota(
    boxes: Any, cls_logits: Any, obj_logits: Any, grid: Any, strides: Any, gt_boxes: Any, gt_classes: Any
) -> tuple[Any, Any, Any]:
    """Assign cells to the labelled boxes of one image. Returns (foreground mask [N], matched box
    index per foreground cell, IoU of each foreground cell's prediction with its box)."""
    n = boxes.shape[0]
    centres = (grid + 0.5) * strides[:, None]
    cx, cy = centres[:, 0], centres[:, 1]
    in_box = (
        (cx[None] > gt_boxes[:, 0:1])
        & (cx[None] < gt_boxes[:, 2:3])
        & (cy[None] > gt_boxes[:, 1:2])
        & (cy[None] < gt_boxes[:, 3:4])
    )
    gcx = (gt_boxes[:, 0:1] + gt_boxes[:, 2:3]) / 2
    gcy = (gt_boxes[:, 1:2] + gt_boxes[:, 3:4]) / 2
    radius = CENTRE_RADIUS * strides[None]
    in_centre = ((cx[None] - gcx).abs() < radius) & ((cy[None] - gcy).abs() < radius)
    candidate = (in_box | in_centre).any(0)
    fg = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    if not candidate.any():
        return fg, torch.zeros(0, dtype=torch.long, device=boxes.device), torch.zeros(0, device=boxes.device)
    cand_idx = candidate.nonzero().squeeze(1)
    both = (in_box & in_centre)[:, cand_idx]
    ious = box_iou(gt_boxes, boxes[cand_idx])
    num_classes = cls_logits.shape[1]
    onehot = F.one_hot(gt_classes, num_classes).float()
    probs = (cls_logits[cand_idx].sigmoid() * obj_logits[cand_idx].sigmoid()[:, None]).sqrt()
    g, m = ious.shape
    cls_cost = F.binary_cross_entropy(
        probs[None].expand(g, m, num_classes).clamp(1e-6, 1 - 1e-6),
        onehot[:, None].expand(g, m, num_classes),
        reduction="none",
    ).sum(-1)
    cost = cls_cost + 3.0 * -torch.log(ious + 1e-8) + 1e5 * (~both).float()
    k = ious.topk(min(10, m), dim=1).values.sum(1).int().clamp(min=1)
    ranks = cost.argsort(1).argsort(1)
    matching = ranks < k[:, None]
    multi = matching.sum(0) > 1
    if multi.any():
        cheapest = cost[:, multi].argmin(0)
        matching[:, multi] = False
        matching[cheapest, multi.nonzero().squeeze(1)] = True
    matched = matching.any(0)
    fg[cand_idx[matched]] = True
    gt_index = matching[:, matched].float().argmax(0)
    pred_iou = (matching.float() * ious).sum(0)[matched]
    return fg, gt_index, pred_iou


def yolox_loss(
    raw: Any, targets: Sequence[tuple[Any, Any]], grid: Any, strides: Any
) -> tuple[Any, dict[str, float]]:
    """``raw`` [B, N, 5 + C] head logits; ``targets`` per image (boxes [G, 4] xyxy input pixels,
    classes [G]). Returns the loss and its parts."""
    boxes = decode_boxes(raw, grid, strides)
    obj_logits = raw[..., 4]
    cls_logits = raw[..., 5:]
    num_classes = cls_logits.shape[-1]
    obj_targets = torch.zeros_like(obj_logits)
    fg_boxes, fg_preds, fg_cls_logits, fg_cls_targets = [], [], [], []
    for b, (gt_boxes, gt_classes) in enumerate(targets):
        if len(gt_boxes) == 0:
            continue
        fg, gt_index, pred_iou = simota(
            boxes[b].detach(),
            cls_logits[b].detach(),
            obj_logits[b].detach(),
            grid,
            strides,
            gt_boxes,
            gt_classes,
        )
        if not fg.any():
            continue
        obj_targets[b, fg] = 1.0
        fg_preds.append(boxes[b, fg])
        fg_boxes.append(gt_boxes[gt_index])
        fg_cls_logits.append(cls_logits[b, fg])
        fg_cls_targets.append(F.one_hot(gt_classes[gt_index], num_classes).float() * pred_iou[:, None])
    num_fg = max(1.0, float(sum(len(p) for p in fg_preds)))
    obj_loss = F.binary_cross_entropy_with_logits(obj_logits, obj_targets, reduction="sum")
    if fg_preds:
        iou = paired_iou(torch.cat(fg_preds), torch.cat(fg_boxes))
        iou_loss = (1 - iou**2).sum()
        cls_loss = F.binary_cross_entropy_with_logits(
            torch.cat(fg_cls_logits), torch.cat(fg_cls_targets), reduction="sum"
        )
    else:
        iou_loss = cls_loss = raw.sum() * 0.0
    loss = (IOU_WEIGHT * iou_loss + obj_loss + cls_loss) / num_fg
    return loss, {
        "iou": float(iou_loss.detach()) / num_fg,
        "obj": float(obj_loss.detach()) / num_fg,
        "cls": float(cls_loss.detach()) / num_fg,
    }
