"""First metrics of the suite: EN, SD, SF, MI, SSIM (the full suite with reference conventions is issue 3)."""
import numpy as np
from skimage.metrics import structural_similarity

from metrics.registry import register_metric


def _to255(x):
    return np.asarray(x, dtype=np.float64) * 255.0


def _hist_entropy(counts):
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


@register_metric("EN", higher_is_better=True, value_range=(0, 8))
def entropy(a, b, f, *, convention="default"):
    """Shannon entropy of F in bits over 256 grey levels (F rounded to uint8)."""
    q = np.clip(np.floor(_to255(f) + 0.5), 0, 255).astype(np.int64)
    return _hist_entropy(np.bincount(q.ravel(), minlength=256))


@register_metric("SD", higher_is_better=True, value_range=(0, 127.5))
def standard_deviation(a, b, f, *, convention="default"):
    """Standard deviation of F on the 0..255 scale (population, /N)."""
    return float(_to255(f).std())


@register_metric("SF", higher_is_better=True)
def spatial_frequency(a, b, f, *, convention="default"):
    """Spatial frequency sqrt(RF^2 + CF^2), first differences averaged over their own counts (0..255)."""
    x = _to255(f)
    return float(np.sqrt(np.mean(np.diff(x, axis=1) ** 2) + np.mean(np.diff(x, axis=0) ** 2)))


def _mutual_information(x, y):
    qx = np.clip(np.floor(_to255(x) + 0.5), 0, 255).astype(np.int64).ravel()
    qy = np.clip(np.floor(_to255(y) + 0.5), 0, 255).astype(np.int64).ravel()
    joint = np.bincount(qx * 256 + qy, minlength=256 * 256).reshape(256, 256).astype(np.float64)
    return (_hist_entropy(joint.sum(1)) + _hist_entropy(joint.sum(0)) - _hist_entropy(joint.ravel()))


@register_metric("MI", higher_is_better=True)
def mutual_information(a, b, f, *, convention="default"):
    """MI(A, F) + MI(B, F) in bits over 256-bin histograms of the uint8-rounded images."""
    return _mutual_information(a, f) + _mutual_information(b, f)


@register_metric("SSIM", higher_is_better=True, value_range=(-2, 2))
def ssim(a, b, f, *, convention="default"):
    """SSIM(A, F) + SSIM(B, F), Wang et al. 2004 Gaussian window (sigma 1.5), data range 255."""
    x, y, z = _to255(a), _to255(b), _to255(f)
    kw = dict(data_range=255.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    return float(structural_similarity(z, x, **kw) + structural_similarity(z, y, **kw))
