"""Information-theoretic metrics on grey-level histograms: MI, NMI, NCIE.

Histograms have 256 bins of the uint8 grey levels (``_filters.grey_levels``). For 8-bit inputs these are
the exact grey values, so they equal CDDFuse's ``sklearn.mutual_info_score`` on the raw values; a 16-bit
image is quantised to 256 levels first (documented difference: sklearn would use every distinct value).
"""
from __future__ import annotations

import numpy as np

from metrics._filters import entropy, grey_levels, joint_histogram, mutual_information, stretch_levels, warn
from metrics.registry import register_metric


@register_metric("MI", higher_is_better=True, conventions=("default", "cddfuse", "vifb"))
def mutual_information_metric(a, b, f, *, convention="default"):
    """Mutual information MI(A, F) + MI(B, F), MI = H(X) + H(F) - H(X, F) over 256-bin histograms.

    Qu, Zhang & Yan 2002, "Information measure for performance of image fusion", Electron. Lett. 38(7),
    313-315. Higher is better; range [0, 2 H(F)].

    Notes
    -----
    ``default``: in bits (log2). ``cddfuse`` and ``vifb``: in nats (CDDFuse uses sklearn's
    ``mutual_info_score``; VIFB ``metricsMutinf`` uses natural logs after a min-max stretch that is a
    bijection on 8-bit data), i.e. ln 2 = 0.693 times the default. Tang's code gives the bit value except
    when F holds both 254 and 255 (a uint8 saturation bug), which is not reproduced. A constant F shares
    no information with anything: 0 (no warning: the value is exact, not a fallback).
    """
    base = np.e if convention in ("cddfuse", "vifb") else 2.0
    fl = grey_levels(f)
    return (mutual_information(grey_levels(a), fl, base)[0] + mutual_information(grey_levels(b), fl, base)[0])


@register_metric("NMI", higher_is_better=True, value_range=(0, 2), conventions=("default", "vifb"))
def normalised_mutual_information(a, b, f, *, convention="default"):
    """Normalised mutual information 2 [MI(A,F) / (H(A) + H(F)) + MI(B,F) / (H(B) + H(F))].

    Hossny, Nahavandi & Creighton 2008, "Comments on 'Information measure for performance of image
    fusion'", Electron. Lett. 44(18), 1066-1067. Higher is better; range [0, 2].

    Notes
    -----
    Every convention reproduces Zheng Liu's ``metricMI(..., 1)`` (``zhengliu.Q_MI``): each image is first
    min-max stretched to 0..255 and rounded (``normalize1``). The log base cancels. A constant source and
    a constant F give 0/0 in one term; that term is taken as 0 with a warning.
    """
    fl = stretch_levels(f).astype(np.int64)
    total = 0.0
    for x in (a, b):
        mi, hx, hf, _ = mutual_information(stretch_levels(x).astype(np.int64), fl)
        if hx + hf == 0:
            warn("NMI: a source and F are both constant (0/0 term taken as 0)")
            continue
        total += mi / (hx + hf)
    return 2 * total


def _ncc(x_levels, y_levels):
    """Nonlinear correlation coefficient (Wang, Shen & Jin 2008, eq. 3): H(X) + H(Y) - H(X,Y), log base 256."""
    joint = joint_histogram(x_levels, y_levels)
    return (entropy(joint.sum(1), 256) + entropy(joint.sum(0), 256) - entropy(joint, 256))


@register_metric("NCIE", higher_is_better=True, value_range=(0, 1), conventions=("default", "vifb"))
def nonlinear_correlation_information_entropy(a, b, f, *, convention="default"):
    """Nonlinear correlation information entropy Q_NCIE = 1 + sum_i (l_i / 3) log_256(l_i / 3).

    Wang, Shen & Jin 2008, "Performance evaluation of image fusion techniques", ch. 19 of Image Fusion:
    Algorithms and Applications (Stathaki ed.), pp. 469-492. The l_i are the eigenvalues of the 3x3
    nonlinear correlation matrix of (A, B, F), whose entries are NCC = H(X) + H(Y) - H(X, Y) in base 256
    (so the diagonal is 1). Higher is better; range [0, 1].

    Notes
    -----
    Every convention reproduces Zheng Liu's ``metricWang`` (``zhengliu.Q_NCIE``): images min-max
    stretched to 0..255 (``normalize1``), 256-bin histograms. Eigenvalues <= 0 (possible only through
    rounding) contribute 0 (the limit of l log l). Constant images are stretched to all zeros (a
    single grey level), which is still defined: the value stays in [0, 1] (about 0.80 when all three
    are constant).
    """
    xa, xb, xf = (stretch_levels(x).astype(np.int64) for x in (a, b, f))
    ab, af, bf = _ncc(xa, xb), _ncc(xa, xf), _ncc(xb, xf)
    r = np.linalg.eigvalsh(np.array([[1.0, ab, af], [ab, 1.0, bf], [af, bf, 1.0]]))
    r = r[r > 0]
    hr = -float((r / 3 * np.log(r / 3)).sum()) / np.log(256)
    return 1.0 - hr
