"""The batch size of an analysis when none is given: from free device memory on CUDA, else the dataset views'
memory bound on the CPU. Fixed for the whole pass (and stored), so a resumed pass computes what a whole one does."""

from __future__ import annotations

import torch
from torch import nn

from nnsee.methods.dataset_views._stopped import LayerCalls, autograd_batch_size
from nnsee.methods.dataset_views.top_images import AUTO_BATCH_RANGE, auto_batch_size
from nnsee.train.evaluate import chunk_size

#: Share of the free CUDA memory one batch may take (the rest: the model, the allocator's slack, other work).
CUDA_SHARE = 0.25
#: What a gradient method's batch may keep for autograd on the CPU.
CPU_AUTOGRAD_BYTES = 192 * 2**20


def _power_of_two(n: float, most: int) -> int:
    """The largest power of two at most ``min(n, most)`` (at least 1)."""
    return 1 << (max(1, int(min(n, most))).bit_length() - 1)


def choose_batch_size(model: nn.Module, one: torch.Tensor, seen: LayerCalls, gradients: bool,
                      device: torch.device) -> int:
    """Images a batch for ``one`` (1, C, H, W) on ``device``, from ``seen`` (the probe of one image: its largest
    tensor and the total of every leaf output, what autograd keeps): a power of two within
    1..``AUTO_BATCH_RANGE[1]``. CUDA: ``CUDA_SHARE`` of the free memory over the total; the CPU: the input bound
    of ``evaluate``, the dataset views' bound on the largest tensor, and (``gradients``) ``CPU_AUTOGRAD_BYTES``."""
    most = AUTO_BATCH_RANGE[1]
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return _power_of_two(autograd_batch_size(model, one, int(free * CUDA_SHARE), seen=seen, most=most), most)
    size = min(chunk_size(tuple(one.shape[1:]), one.element_size()), auto_batch_size(model, None, [], seen))
    if gradients:
        size = min(size, autograd_batch_size(model, one, CPU_AUTOGRAD_BYTES, seen=seen))
    return _power_of_two(size, most)
