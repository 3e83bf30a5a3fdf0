"""IFCNN (Zhang et al. 2020), the seed paper's deep comparator, from the authors' published weights.

Registered as ``ifcnn(a, b, *, scheme="max", weights=None, device="cpu")``. The network (paper Sec. 3,
Fig. 2) is the authors' ``Code/model.py`` written anew in plain torch:

* feature extraction, shared by both inputs: CONV1 = ResNet-101's first convolution (64 filters 7x7 on the
  RGB input, no bias, frozen ImageNet weights, which the snapshot carries) run with stride 1 and no padding
  on the input padded by 3 pixels (replicate), then CONV2 = replicate-pad 1, 3x3 conv (no bias), batch norm,
  ReLU;
* feature fusion, element-wise over the two feature maps (paper Eq. 4-6): ``max`` (IFCNN-MAX, the authors'
  choice for medical images), ``sum`` or ``mean``; each scheme has its own trained snapshot;
* reconstruction: CONV3 (as CONV2) and CONV4 = 1x1 conv with bias to 3 channels.

Slots and processing, as the authors' ``Code/IFCNN_Main.py`` does for its medical set (and as
``../shared/peers/outputs/ifcnn`` was made): ``a`` is the "other" image (CT, PET/SPECT luma) and ``b`` the
MRI, called ``net(a, b)``; the element-wise fusion rules are symmetric, so the order does not change the
result beyond float rounding. The grey sources in [0, 1] are replicated to 3 channels with no
normalisation (mean 0, std 1); the output is clamped to [0, 1], scaled by 255 and truncated to uint8 as
``astype('uint8')`` does, then turned to grey with OpenCV's fixed-point ``COLOR_RGB2GRAY``
(``(4899 R + 9617 G + 1868 B + 8192) >> 14``). The result is that 8-bit grey divided by 255. Colour
(PET/SPECT) is the registry's: Y is fused and the source's Cb/Cr are put back.

Weights: ``weights=FILE`` (a state dict of this architecture; its scheme must match ``scheme``), else
``IFCNN-<SCHEME>.pth`` in the cache that ``python -m bench weights fetch ifcnn`` fills
(``methods/pretrained.py``).

References
----------
Y. Zhang, Y. Liu, P. Sun, H. Yan, X. Zhao, L. Zhang, "IFCNN: A general image fusion framework based on
convolutional neural network", Information Fusion 54, 99-118, 2020. Code and weights:
https://github.com/uzeful/IFCNN
"""
from __future__ import annotations

import numpy as np

from methods.pretrained import missing_weights, network_attributes, network_complexity, published
from methods.registry import one_of, register_method

CITATION = ("Y. Zhang, Y. Liu, P. Sun, H. Yan, X. Zhao, L. Zhang, IFCNN: A general image fusion framework "
            "based on convolutional neural network, Information Fusion 54, 2020")
SCHEMES = ("max", "sum", "mean")
# OpenCV's COLOR_RGB2GRAY on uint8: BT.601 weights in 14-bit fixed point, rounded (imgproc/color.hpp)
_CV_GREY = (4899, 9617, 1868)
# torch is imported when the method first runs (methods.ifcnn.network): `import methods` stays fast


__getattr__ = network_attributes(__name__)   # the network's classes and builder, from .network


def snapshot(scheme: str):
    """The published snapshot entry of one fusion scheme (``IFCNN-MAX.pth`` ...)."""
    return published("ifcnn", f"IFCNN-{scheme.upper()}.pth")


def opencv_rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) RGB -> uint8 grey exactly as OpenCV's ``cvtColor(COLOR_RGB2GRAY)``."""
    rgb = rgb.astype(np.int32)
    wr, wg, wb = _CV_GREY
    return ((wr * rgb[..., 0] + wg * rgb[..., 1] + wb * rgb[..., 2] + (1 << 13)) >> 14).astype(np.uint8)


def ifcnn_complexity(scheme: str = "max", **_ignored) -> dict:
    """Parameters and MACs of IFCNN on one 256x256 pair (both feature passes); the weights do not change it."""
    import torch

    from methods.ifcnn.network import IFCNN
    return network_complexity(IFCNN(scheme), *[torch.zeros(1, 3, 256, 256)] * 2)


def ifcnn_unavailable(scheme: str = "max", weights: str | None = None, **_ignored) -> str | None:
    return missing_weights(snapshot(scheme), weights) if scheme in SCHEMES else None


@register_method("ifcnn", citation=CITATION, complexity=ifcnn_complexity, unavailable=ifcnn_unavailable,
                 allowed={"scheme": one_of(SCHEMES)})
def ifcnn(a: np.ndarray, b: np.ndarray, *, scheme: str = "max", weights: str | None = None,
          device: str = "cpu") -> np.ndarray:
    """IFCNN (Zhang et al. 2020): CNN features fused element-wise (max, sum or mean), authors' weights."""
    import torch

    from methods.ifcnn.network import ifcnn_network
    net = ifcnn_network(scheme, weights, device)
    with torch.inference_mode():
        inputs = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None].expand(1, 3, *x.shape)
                  .to(device) for x in (a, b)]
        out = net(*inputs)[0].clamp(0, 1).mul(255).cpu().numpy()
    rgb = out.astype(np.uint8).transpose(1, 2, 0)            # truncation, as the authors' astype('uint8')
    return opencv_rgb_to_grey(rgb).astype(np.float32) / np.float32(255)
