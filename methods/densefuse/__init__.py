"""DenseFuse (Li & Wu 2019): a dense-block auto-encoder whose encoder features are fused by a fixed rule.

Registered as ``densefuse(a, b, *, strategy="addition", l1_radius=1, weights=None, device="cpu")``. The
network is the authors' PyTorch ``net.py`` (grey model) written anew in plain torch (paper Fig. 1,
Sec. III-A): every convolution is 3x3 on a reflection-padded input, with bias and ReLU (the PyTorch release
applies ReLU after the last layer as well, and so does this port);

* encoder: C1 (1 -> 16), then a dense block of three convolutions (16 -> 16 each), each output concatenated
  to its input, giving 64 feature maps;
* fusion layer (Sec. III-C): ``addition`` -- the PyTorch release's ``(phi_1 + phi_2) / 2``, the mean
  of the two feature maps (the paper's addition strategy, Eq. 6, halved; the release's weights were
  used with the half), or ``l1`` -- the l1-norm strategy (Eq. 7-9): activity
  C_i = ||phi_i(x, y)||_1 over the 64 channels, averaged over a (2r + 1)^2 block (``l1_radius`` r; the
  paper uses r = 1, the authors' TensorFlow release r = 0), weights w_i = C_i / (C_1 + C_2), f = sum w_i phi_i;
* decoder: C2 (64 -> 64), C3 (64 -> 32), C4 (32 -> 16), C5 (16 -> 1).

Slots and processing, as the authors' ``test_image.py`` (and ``../shared/peers/outputs/densefuse``): ``a``
is the "other" image (CT, PET/SPECT luma) and ``b`` the MRI, encoded separately and fused with symmetric
rules. Inputs are grey values in [0, 255] (float, no normalisation); the output is clamped to [0, 255] and
truncated to uint8 (``astype('uint8')``), returned divided by 255. Only ``addition`` has a reference output.

Weights: ``weights=FILE``, else ``densefuse_gray.model`` in the cache that ``python -m bench weights fetch
densefuse`` fills (``methods/pretrained.py``).

References
----------
H. Li, X.-J. Wu, "DenseFuse: A fusion approach to infrared and visible images", IEEE Transactions on
Image Processing 28(5), 2614-2623, 2019. Code and weights: https://github.com/hli1221/densefuse-pytorch
"""
from __future__ import annotations

import numpy as np

from methods.pretrained import network_attributes, network_complexity, published, weights_check
from methods.registry import between, one_of, register_method

CITATION = ("H. Li, X.-J. Wu, DenseFuse: A fusion approach to infrared and visible images, "
            "IEEE Trans. Image Process. 28(5), 2019")
STRATEGIES = ("addition", "l1")
# torch is imported when the method first runs (methods.densefuse.network): `import methods` stays fast


__getattr__ = network_attributes(__name__)   # the network's classes and builder, from .network


def densefuse_complexity(**_ignored) -> dict:
    """Parameters and MACs on one 256x256 pair (two encoder passes, one decoder pass); rule-free."""
    import torch

    from methods.densefuse.network import DenseFuse, densefuse_network
    return network_complexity(DenseFuse(), *[torch.zeros(1, 1, 256, 256)] * 2)


@register_method("densefuse", citation=CITATION, complexity=densefuse_complexity,
                 unavailable=weights_check(published("densefuse", "densefuse_gray.model")),
                 allowed={"strategy": one_of(STRATEGIES), "l1_radius": between(0, 16)})
def densefuse(a: np.ndarray, b: np.ndarray, *, strategy: str = "addition", l1_radius: int = 1,
              weights: str | None = None, device: str = "cpu") -> np.ndarray:
    """DenseFuse (Li & Wu 2019): dense-block encoder, addition or l1-norm feature fusion, authors' weights."""
    import torch

    from methods.densefuse.network import DenseFuse, densefuse_network
    net = densefuse_network(strategy, l1_radius, weights, device)
    with torch.inference_mode():
        inputs = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) * np.float32(255))[None, None]
                  .to(device) for x in (a, b)]
        out = net(*inputs)[0, 0].clamp(0, 255).cpu().numpy()
    return out.astype(np.uint8).astype(np.float32) / np.float32(255)   # truncation, as astype('uint8')
