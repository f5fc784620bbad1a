"""A tiny StyleGAN-interface generator with closed-form behaviour, for the metric tests."""
import math

import pytest
import torch


class ToyGenerator(torch.nn.Module):
    """mapping: w = M z (broadcast to num_ws); synthesis: img = A mean(ws) (+ tanh if nonlinear) + noise.

    With nonlinear=False the image is linear in w, so path lengths and attribute paths have closed forms.
    The constant noise buffer is named like StyleGAN's (`...noise_const`).
    """

    def __init__(self, z_dim=6, w_dim=5, num_ws=3, resolution=4, nonlinear=False, noise_strength=0.1, seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.z_dim, self.w_dim, self.num_ws, self.c_dim, self.img_resolution = z_dim, w_dim, num_ws, 0, resolution
        self.nonlinear, self.noise_strength = nonlinear, noise_strength
        self.register_buffer("M", torch.randn(w_dim, z_dim, generator=generator) / math.sqrt(z_dim))
        self.register_buffer("A", torch.randn(3 * resolution**2, w_dim, generator=generator) / math.sqrt(w_dim))
        self.register_buffer("layer_noise_const", torch.randn(1, 3, resolution, resolution, generator=generator))

    def mapping(self, z, c):
        assert c.shape == (len(z), self.c_dim)
        return (z @ self.M.T)[:, None].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const"):
        r = self.img_resolution
        img = (ws.mean(1) @ self.A.T).reshape(-1, 3, r, r)
        if self.nonlinear:
            img = torch.tanh(3 * img)
        noise = self.layer_noise_const if noise_mode == "const" else torch.randn_like(img)
        return img + self.noise_strength * noise


@pytest.fixture
def toy_generator():
    return ToyGenerator
