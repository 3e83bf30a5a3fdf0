"""GeSeNet (Li et al. 2023): semantic-guided fusion with edge enhancement, region masks and global refinement.

Registered as ``gesenet(a, b, *, seed=0, weights=None, device="cpu")``. The network is the authors'
``model.py`` and ``RMM.py`` written anew in plain torch (paper Sec. III, Fig. 2); each source has its own
branch (``vis_*`` for the "other" image, ``inf_*`` for the MRI):

* a 3x3 conv + leaky ReLU (0.2) to 16 channels;
* the edge enhancement module (EEM): a two-layer dense block reduced by a 1x1 conv, plus a fixed
  depth-wise Sobel magnitude |Gx| + |Gy| lifted by a 1x1 conv, summed, leaky ReLU (0.1);
* the region mask module (RMM): a small conv net predicts a 2-channel spatial mask logit; four 3x3 convs
  each split their channels into a "dense" and a "sparse" group by a learned channel-mask logit; sparse
  channels only act inside the spatial mask; a 1x1 conv collects the four layers; channel attention (CA)
  and a residual connection follow;
* the global refinement module (GRM, spatial feature transform): the concatenated RMM outputs are
  modulated with a scale and shift computed from the MRI's EEM features; the decoder concatenates the
  other image's EEM features, a 3x3 conv + leaky ReLU to 32 channels and a 3x3 conv with tanh / 2 + 1/2.

**Stochastic, as released.** The authors' ``test.py`` never calls ``eval()`` (the sparse-convolution eval
path of ``RMM.py`` fails), so both masks are Gumbel-softmax samples with temperature 1, as in training:
soft masks softmax((logit + g) / tau), g = -log(-log u), u ~ U(0, 1). The noise here comes from a torch
generator seeded with ``seed``, so a given seed is reproducible; two seeds differ by about 50 dB PSNR (as
the authors' outputs, which were made with other seeds). The decoder's batch norm is in the released
state dict but unused by the forward pass.

Slots and processing, as the authors' ``test.py`` (and ``../shared/peers/outputs/gesenet``): ``a`` is the
"other" image (CT, PET/SPECT luma, the authors' "vis" input) and ``b`` the MRI (their "ir" input), both in
[0, 1]; the function returns the fused Y clamped to [0, 1]. The authors then re-colour (PET/SPECT), clamp
the RGB image, min-max stretch it over all pixels and channels and truncate ``uint8(255 x)``; that last
step acts on colour, so it is the registry's ``finish`` hook (``stretch_to_uint8``), run by ``methods.fuse``
after re-colouring. Stretching Y alone instead loses 20-25 dB of agreement on SPECT (its re-coloured RGB
range is wider than Y's).

Weights: ``weights=FILE``, else ``GeSeNet.pth`` in the cache that ``python -m bench weights fetch gesenet``
fills (``methods/pretrained.py``).

References
----------
J. Li, J. Liu, S. Zhou, Q. Zhang, N. K. Kasabov, "GeSeNet: A general semantic-guided network with
couple mask ensemble for medical image fusion", IEEE Transactions on Neural Networks and Learning
Systems, 2023. Code and weights: https://github.com/lok-18/GeSeNet
"""
from __future__ import annotations

import numpy as np

from methods.pretrained import network_attributes, network_complexity, published, weights_check
from methods.registry import between, register_method

CITATION = ("J. Li, J. Liu, S. Zhou, Q. Zhang, N. K. Kasabov, GeSeNet: A general semantic-guided network with "
            "couple mask ensemble for medical image fusion, IEEE Trans. Neural Netw. Learn. Syst., 2023")
# torch is imported when the method first runs (methods.gesenet.network): `import methods` stays fast


__getattr__ = network_attributes(__name__)   # the network's classes and builder, from .network


def gesenet_complexity(**_ignored) -> dict:
    """Parameters and MACs on one 256x256 pair (the masked stack runs each conv on both channel groups)."""
    import torch

    from methods.gesenet.network import GeSeNet, gesenet_network
    x = torch.zeros(1, 1, 256, 256)
    return network_complexity(GeSeNet(), x, x)


def stretch_to_uint8(image: np.ndarray) -> np.ndarray:
    """The authors' output step on the final grey or RGB image: min-max stretch over all pixels and channels,
    ``uint8(255 x)`` (truncation); returned divided by 255."""
    lo, hi = float(image.min()), float(image.max())
    stretched = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return (np.float32(255) * stretched).astype(np.uint8).astype(np.float32) / np.float32(255)


@register_method("gesenet", citation=CITATION, complexity=gesenet_complexity,
                 unavailable=weights_check(published("gesenet", "GeSeNet.pth")), finish=stretch_to_uint8,
                 allowed={"seed": between(0, 2 ** 63 - 1)})     # torch.Generator.manual_seed's range
def gesenet(a: np.ndarray, b: np.ndarray, *, seed: int = 0, weights: str | None = None,
            device: str = "cpu") -> np.ndarray:
    """GeSeNet (Li et al. 2023): edge, region-mask and global refinement modules; seeded Gumbel masks."""
    import torch

    from methods.gesenet.network import GeSeNet, gesenet_network
    net = gesenet_network(weights, device)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    with torch.inference_mode():
        other, mri = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None].to(device)
                      for x in (a, b))
        return net(other, mri, generator)[0, 0].clamp(0, 1).cpu().numpy()
