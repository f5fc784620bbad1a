"""Stage-2 objectives: the LEAD similarity-distribution loss (thesis Eq. 3.2-3.3) and the CL baseline.

LEAD: for every source location u of image i, p = softmax_k(cos(h_i^u, h_j^k) / tau_teacher) over the target
image's locations from the frozen hypercolumns and q = softmax_k(cos(f_i^u, f_j^k) / tau) from the compact
features; loss = cross-entropy H(p, q). The thesis sums over u (Eq. 3.3); we average over u and the batch so
the learning rate does not depend on the feature-map size (a constant factor, same minimiser).

Memory: the B x N x N similarities are built CHUNK source rows at a time; the teacher rows carry no graph and
the student rows are recomputed in backward (activation checkpointing), so peak memory is O(B * chunk * N)
instead of O(B * N * N), which is what lets 3840-d hypercolumns at 24x24 with batch 256 fit.

Sharpening for weak teachers (DESIGN §4.4: a briefly trained teacher's cosine similarities are bunched
together, so softmax(cos/0.05) targets are nearly flat): `teacher_tau` (a lower teacher temperature sharpens
p) and `center_teacher` (subtract the batch-mean hypercolumn before the cosine, which spreads similarities
that a shared component compresses). Paper defaults are the thesis's: teacher_tau = tau = 0.05, no centring.

Precision: every loss here computes its similarities, softmaxes and sums in full precision (autocast disabled
inside, bf16/fp16 inputs promoted to float32). Under CPU autocast a matmul returns bf16/fp16 and softmax keeps
that dtype, so cos/tau (tau = 0.05: a logit error of up to 20 x 2^-9 per similarity) and the cross-entropy ran in
low precision: on fp32 random 16-d features (24x24, batch 4) the LEAD loss's gradient differed from fp32 by 1.8%
(bf16) / 0.4% (fp16), the CL loss value by 1.7e-5 (bf16); now both are identical to their fp32 values. The
networks in front of the losses still run under the caller's autocast (tests/lead/test_precision.py).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

LEAD_TAU = 0.05  # thesis §3.3 "We set the temperature tau to be 0.05"
DEFAULT_CHUNK = 64  # source locations per chunk (24x24 = 576 locations -> 9 chunks)
CL_TEMPERATURE = 7.0  # contrast-landmark train_feature_projector.py: --temperature 7 (softmax multiplier)
CL_SOFTARGMAX_MUL = 7.0  # contrast-landmark FeatDistiller: spatial softmax multiplier of the projector output
CL_DISTANCE_POWER = 0.5  # contrast-landmark dense_corr_loss(pow=0.5): penalty = distance ** 0.5
# contrast-landmark README (train_feature_projector.py): "--softargmax_mul 7. --temperature 7. for --out_dim 128
# or --out_dim 256, and --softargmax_mul 6.5 --temperature 8. for --out_dim 64" (searched on a validation set).
CL_CONSTANTS_BY_DIM = {64: (6.5, 8.0)}  # dim -> (softargmax_mul, temperature); other dims: (7, 7)


def cl_constants(dim: int) -> tuple[float, float]:
    """(projector softargmax multiplier, dense-loss temperature) CL used for an output width `dim`."""
    return CL_CONSTANTS_BY_DIM.get(int(dim), (CL_SOFTARGMAX_MUL, CL_TEMPERATURE))


def _full(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 -> float32; float32/float64 unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def no_autocast(x: torch.Tensor):
    """Context that turns autocast off on `x`'s device (the loss arithmetic below runs in full precision); a
    no-op where autocast does not exist (the meta device of lead_hsr.budget)."""
    if not torch.amp.is_autocast_available(x.device.type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=x.device.type, enabled=False)


def flatten_unit(feat: torch.Tensor) -> torch.Tensor:
    """B x C x h x w -> B x N x C, each location's vector L2-normalised (so dot product = cosine)."""
    return F.normalize(feat.flatten(2).transpose(1, 2), dim=-1)


def teacher_vectors(src: torch.Tensor, tgt: torch.Tensor, center: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit teacher vectors (B x N x C); with `center`, the mean over the batch and all locations of both
    images is removed first. Materialises normalised copies: used by the naive reference only."""
    if center:
        mean = torch.cat([src, tgt]).mean((0, 2, 3), keepdim=True)
        src, tgt = src - mean, tgt - mean
    return flatten_unit(src), flatten_unit(tgt)


class _TeacherCosines:
    """Row blocks of the teacher's cosine matrix without copying the (large) hypercolumn maps.

    Works on B x C x N views; centring uses (a-m).(b-m) = a.b - m.a - m.b + m.m and
    ||a-m||^2 = ||a||^2 - 2 m.a + m.m, so no centred or normalised copy of 3840-d maps is ever made.
    """

    def __init__(self, src: torch.Tensor, tgt: torch.Tensor, center: bool, eps: float = 1e-12):
        self.src, self.tgt = src.flatten(2), tgt.flatten(2)  # views, B x C x N
        self.mean = None
        if center:
            count = 2 * self.src.shape[0] * self.src.shape[2]
            self.mean = (self.src.sum((0, 2)) + self.tgt.sum((0, 2))) / count  # C
            self.mm = self.mean @ self.mean
            self.m_tgt = torch.einsum("c,bcn->bn", self.mean, self.tgt)
        self.eps = eps
        self.inv_tgt = self._inv_norm(self.tgt, self.m_tgt if center else None)

    def _inv_norm(self, x: torch.Tensor, m_x: torch.Tensor | None) -> torch.Tensor:
        sq = torch.linalg.vector_norm(x, dim=1) ** 2
        if m_x is not None:
            sq = (sq - 2 * m_x + self.mm).clamp_min(0)
        return 1 / sq.sqrt().clamp_min(self.eps)

    def rows(self, rows: slice) -> torch.Tensor:
        block = self.src[:, :, rows]
        dots = block.transpose(1, 2) @ self.tgt  # B x chunk x N
        m_block = None
        if self.mean is not None:
            m_block = torch.einsum("c,bcn->bn", self.mean, block)
            dots = dots - m_block[:, :, None] - self.m_tgt[:, None, :] + self.mm
        return dots * self._inv_norm(block, m_block)[:, :, None] * self.inv_tgt[:, None, :]


def _chunk_cross_entropy(student_rows, student_tgt, teacher_cos_rows, tau: float, teacher_tau: float):
    """Sum over the chunk's source rows of H(p, q) over target locations."""
    p = torch.softmax(teacher_cos_rows / teacher_tau, dim=-1)
    log_q = torch.log_softmax(student_rows @ student_tgt.transpose(1, 2) / tau, dim=-1)
    return -(p * log_q).sum()


def lead_loss(student_src: torch.Tensor, student_tgt: torch.Tensor, teacher_src: torch.Tensor,
              teacher_tgt: torch.Tensor, tau: float = LEAD_TAU, teacher_tau: float | None = None,
              center_teacher: bool = False, chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Mean over batch and source locations of H(p, q) (thesis Eq. 3.3), computed in chunks.

    student_*: B x C x h x w compact features (with grad); teacher_*: B x C' x h x w frozen hypercolumns
    (normalised per layer or not, as the caller chooses). Pairs are (src[b], tgt[b]).
    """
    if student_src.shape[-2:] != teacher_src.shape[-2:]:
        raise ValueError(f"student grid {tuple(student_src.shape[-2:])} != teacher grid "
                         f"{tuple(teacher_src.shape[-2:])}: extract hypercolumns at the feature-map size")
    teacher_tau = tau if teacher_tau is None else teacher_tau
    with no_autocast(student_src):
        s_src, s_tgt = flatten_unit(_full(student_src)), flatten_unit(_full(student_tgt))
        with torch.no_grad():
            teacher = _TeacherCosines(_full(teacher_src.detach()), _full(teacher_tgt.detach()), center_teacher)
        batch, n = s_src.shape[:2]
        total = s_src.new_zeros(())
        for start in range(0, n, chunk_size):
            rows = slice(start, start + chunk_size)
            with torch.no_grad():
                teacher_rows = teacher.rows(rows)
            args = (s_src[:, rows], s_tgt, teacher_rows, tau, teacher_tau)
            if torch.is_grad_enabled() and s_src.requires_grad:
                # recompute the student block in backward instead of keeping every block's graph alive
                # (non-reentrant checkpointing recomputes under the autocast state of this forward: off)
                total = total + checkpoint(_chunk_cross_entropy, *args, use_reentrant=False)
            else:
                total = total + _chunk_cross_entropy(*args)
        return total / (batch * n)


def lead_loss_naive(student_src, student_tgt, teacher_src, teacher_tgt, tau: float = LEAD_TAU,
                    teacher_tau: float | None = None, center_teacher: bool = False) -> torch.Tensor:
    """Reference implementation of the same loss with the full B x N x N matrices (tests and benchmarks)."""
    teacher_tau = tau if teacher_tau is None else teacher_tau
    t_src, t_tgt = teacher_vectors(teacher_src, teacher_tgt, center_teacher)
    p = torch.softmax(torch.bmm(t_src, t_tgt.transpose(1, 2)) / teacher_tau, dim=-1).detach()
    s_src, s_tgt = flatten_unit(student_src), flatten_unit(student_tgt)
    log_q = torch.log_softmax(torch.bmm(s_src, s_tgt.transpose(1, 2)) / tau, dim=-1)
    return -(p * log_q).sum(-1).mean()


def pair_targets(x: torch.Tensor) -> torch.Tensor:
    """Target image of each source in a batch: its neighbour, x_{2k} <-> x_{2k+1} (an odd last image gets x_0).

    Thesis §3.2.3 pairs two different images x_i, x_j of the dataset; with shuffled batches the neighbour
    is a random other image, and every image serves as source and as target (both directions of a pair: the
    loss is not symmetric). Pairs stay inside any even-sized slice of the batch, so DDP processes holding
    contiguous even shares see exactly the pairs one process sees.
    """
    n = x.shape[0]
    order = torch.arange(n, device=x.device) ^ 1
    if n % 2:
        order[-1] = 0
    return x[order]


class CLProjector(nn.Module):
    """ContrastLandmarks stage-2 'feature distiller': 1x1 conv (hypercolumn -> C, with bias) followed by a
    spatial softmax over the h*w locations of each output channel with multiplier `softargmax_mul` (their
    default mode; 7, or 6.5 for C = 64: `cl_constants`). The conv runs under the caller's autocast, the
    softmax in full precision."""

    def __init__(self, in_dim: int, dim: int, softargmax_mul: float = CL_SOFTARGMAX_MUL):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, dim, 1, bias=True)
        self.softargmax_mul = softargmax_mul
        self.dim = dim

    def forward(self, hyper: torch.Tensor) -> torch.Tensor:
        out = self.conv(hyper)
        b, c, h, w = out.shape
        with no_autocast(out):
            return torch.softmax(self.softargmax_mul * _full(out).reshape(b, c, h * w), dim=-1).reshape(b, c, h, w)


def cl_dense_correlation_loss(feat: torch.Tensor, stride: float, temperature: float = CL_TEMPERATURE,
                              power: float = CL_DISTANCE_POWER) -> torch.Tensor:
    """ContrastLandmarks' within-image dense correlation loss.

    For each location u: softmax_v(temperature * cos(f^u, f^v)) over the same image's locations, weighted by
    the input-pixel distance ||pos_u - pos_v|| ** power (pos = grid index * stride); mean over u and batch.
    Their dense_corr_loss (stride = input size // feature size) on the projector output, whose single
    "layer" is L2-normalised per location (layer_wise_normalize with one block): bench/compare_landmarks.py.
    """
    b, _, h, w = feat.shape
    with no_autocast(feat):
        feat = _full(feat)
        ys, xs = torch.meshgrid(torch.arange(h, device=feat.device), torch.arange(w, device=feat.device),
                                indexing="ij")
        pos = torch.stack([ys.flatten(), xs.flatten()], 1).to(feat.dtype) * stride
        distance = torch.cdist(pos, pos).pow(power)
        unit = flatten_unit(feat)
        attention = torch.softmax(temperature * unit @ unit.transpose(1, 2), dim=-1)
        return (attention * distance).sum() / (b * h * w)

