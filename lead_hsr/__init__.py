"""lead-hsr: reproduce LEAD (self-supervised landmarks) and HSR (StyleGAN2-ADA regularizer) end to end."""

__version__ = "0.1.0"
