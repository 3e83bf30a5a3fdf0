"""MATR (Tang et al. 2022): multiscale adaptive transformer fusion of a 2-channel (other, MRI) input.

Registered as ``matr(a, b, *, weights=None, device="cpu")``. The network is the authors'
``Networks/net.py`` ``MODEL(in_channel=2)`` written anew in plain torch (paper Sec. III, Fig. 2):

* ``AdaptiveConv`` -- the paper's adaptive convolution (Sec. III-A; the context-gated convolution of Lin
  et al., ECCV 2020, as the authors' ``layers.py`` implements it): the 3x3 kernel is modulated per sample
  by a sigmoid gate built from the input's 3x3 adaptive average pool, G = sigmoid(gd(ReLU(BN(ce(pool))))
  + gd2(ReLU(BN(ci(ReLU(BN(ce(pool)))))))), W' = G * W, then an ordinary zero-padded 3x3 convolution;
* ``Basic3x3`` = adaptive conv, batch norm, ReLU; the encoder applies ``convInput`` (2 -> 16) and then the
  one shared ``conv`` (16 -> 16) one, two and three times for the three scales;
* ``TransformerBlock`` x 3 (one shared ``basicLayer`` for all scales, Sec. III-B): with the released
  window size 1 each token attends only to itself (softmax over one score = 1), so attention is the
  projection of the value, x + proj(v(LN(x))), followed by x + MLP(LN(x)) (GELU, ratio 4). The
  authors' block reshapes the (B, C, H, W) map with ``view(B, H, W, C)``, which reinterprets memory
  instead of moving channels last; the tokens are therefore runs of 16 consecutive values of the
  (B, C, H, W) layout, and this port keeps that (the weights were trained with it);
* each scale is ``conv`` again, the three are summed and a 1x1 convolution with tanh gives the output.
  ``patch_embed.norm`` is in the released state dict but unused by the forward pass; it is kept so that
  keys match strictly.

Slots and processing, as the authors' ``Test.py`` (and ``../shared/peers/outputs/matr``): channel 0 is
``a``, the "other" image (CT, PET/SPECT luma), channel 1 is ``b``, the MRI; the network is not symmetric.
Inputs in [0, 1]; the output is clipped to [0, 1] (the authors' script casts without clipping, which wraps
negative values round to 255), times 255, rounded to the nearest integer and returned divided by 255. The
authors' ``astype(np.uint8)`` truncates, but the reference outputs in ``../shared/peers/outputs/matr`` are
rounded: on CT-MRI pair 16009 truncation matches 40 % of their pixels and rounding 99.997 %.

Weights: ``weights=FILE``, else ``model_10.pth`` in the cache that ``python -m bench weights fetch matr``
fills (``methods/pretrained.py``).

References
----------
W. Tang, F. He, Y. Liu, Y. Duan, "MATR: Multimodal medical image fusion via multiscale adaptive
transformer", IEEE Transactions on Image Processing 31, 5134-5149, 2022. Code and weights:
https://github.com/tthinking/MATR
"""
from __future__ import annotations

import numpy as np

from methods.pretrained import network_attributes, network_complexity, published, weights_check
from methods.registry import register_method

CITATION = ("W. Tang, F. He, Y. Liu, Y. Duan, MATR: Multimodal medical image fusion via multiscale adaptive "
            "transformer, IEEE Trans. Image Process. 31, 2022")
# torch is imported when the method first runs (methods.matr.network): `import methods` stays fast


__getattr__ = network_attributes(__name__)   # the network's classes and builder, from .network


def matr_complexity(**_ignored) -> dict:
    """Parameters and MACs on one 256x256 pair (every convolution and linear layer, each use counted)."""
    import torch

    from methods.matr.network import MATR, matr_network
    return network_complexity(MATR().eval(), torch.zeros(1, 2, 256, 256))


@register_method("matr", citation=CITATION, complexity=matr_complexity,
                 unavailable=weights_check(published("matr", "model_10.pth")))
def matr(a: np.ndarray, b: np.ndarray, *, weights: str | None = None, device: str = "cpu") -> np.ndarray:
    """MATR (Tang et al. 2022): adaptive convolutions and a transformer on three scales, authors' weights."""
    import torch

    from methods.matr.network import MATR, matr_network
    net = matr_network(weights, device)
    with torch.inference_mode():
        x = torch.from_numpy(np.stack([a, b]).astype(np.float32))[None].to(device)
        out = net(x)[0, 0].clamp(0, 1).mul(255).cpu().numpy()
    return np.floor(out + np.float32(0.5)) / np.float32(255)     # rounded, as the reference outputs are
