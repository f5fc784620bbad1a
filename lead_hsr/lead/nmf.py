"""NMF of hypercolumns to C dims: the "BYOL + NMF" rows of Table 3.1 (thesis §3.3).

Implemented in torch with Lee & Seung's multiplicative updates for the Frobenius loss (scikit-learn is not a
project dependency). Hypercolumns are non-negative (ReLU outputs, bilinear upsampling and L2 normalisation keep
them so). Fit: X (n x D) ~ W (n x C) H (C x D) on sampled hypercolumn vectors; features of new images are the
non-negative codes W solved with H fixed.
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-10  # keeps multiplicative updates away from 0/0
FIT_ITERS = 200
TRANSFORM_ITERS = 100


def _update_codes(x: torch.Tensor, codes: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    return _update_codes_with(codes, x @ basis.t(), basis @ basis.t())


def _update_codes_with(codes: torch.Tensor, x_basis: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """The code update given x @ basis.T and basis @ basis.T (constants when the basis is fixed)."""
    return codes * x_basis / (codes @ gram + EPS)


def _update_basis(x: torch.Tensor, codes: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    return basis * (codes.t() @ x) / ((codes.t() @ codes) @ basis + EPS)


def _init_codes(n: int, dim: int, scale: float, gen: torch.Generator, device, dtype) -> torch.Tensor:
    return (torch.rand(n, dim, generator=gen, dtype=dtype) * scale).to(device)


@torch.no_grad()
def fit_nmf(x: torch.Tensor, dim: int, iters: int = FIT_ITERS, seed: int = 0) -> torch.Tensor:
    """Basis H (dim x D) of a non-negative n x D matrix `x`."""
    if (x < 0).any():
        raise ValueError("NMF needs non-negative input (hypercolumns of ReLU features)")
    gen = torch.Generator().manual_seed(seed)
    scale = (x.mean() / dim).sqrt().item() if x.mean() > 0 else 1.0  # sklearn-style random init scale
    codes = _init_codes(len(x), dim, scale, gen, x.device, x.dtype)
    basis = _init_codes(dim, x.shape[1], scale, gen, x.device, x.dtype)
    for _ in range(iters):
        basis = _update_basis(x, codes, basis)
        codes = _update_codes(x, codes, basis)
    return basis


@torch.no_grad()
def nmf_codes(x: torch.Tensor, basis: torch.Tensor, iters: int = TRANSFORM_ITERS) -> torch.Tensor:
    """Non-negative codes (n x dim) minimising ||x - codes @ basis|| with the basis fixed."""
    codes = torch.full((len(x), len(basis)), 1.0 / len(basis), dtype=x.dtype, device=x.device)
    x_basis, gram = x @ basis.t(), basis @ basis.t()  # the basis is fixed: computed once, not per iteration
    for _ in range(iters):
        codes = _update_codes_with(codes, x_basis, gram)
    return codes


class NMFProjector(nn.Module):
    """Hypercolumn map B x D x h x w -> NMF codes B x C x h x w (basis is a buffer, saved in the state dict)."""

    def __init__(self, basis: torch.Tensor, iters: int = TRANSFORM_ITERS):
        super().__init__()
        self.register_buffer("basis", basis)
        self.iters = iters
        self.dim = len(basis)

    def forward(self, hyper: torch.Tensor) -> torch.Tensor:
        b, d, h, w = hyper.shape
        flat = hyper.permute(0, 2, 3, 1).reshape(-1, d).clamp_min(0)
        codes = nmf_codes(flat, self.basis, self.iters)
        return codes.reshape(b, h, w, self.dim).permute(0, 3, 1, 2)
