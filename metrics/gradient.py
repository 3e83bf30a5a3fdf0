"""Edge-transfer metrics from Sobel gradients: Qabf (Xydeas & Petrovic) and Nabf (Kumar's fusion artifacts)."""
from __future__ import annotations

import numpy as np

from metrics._filters import SOBEL_X, SOBEL_Y, correlate, sobel, to255, warn
from metrics.registry import register_metric


def _qabf_edges(x):
    """Strength and orientation as CDDFuse ``Qabf_getArray``: ``convolve2d(img, h, 'same')`` (zero border)
    with h3 = d/dx (a convolution, i.e. -SOBEL_X correlation) and h1 (= SOBEL_Y correlation);
    alpha = atan(Sy / Sx), pi/2 where Sx = 0."""
    sx, sy = sobel(x, mode="constant")
    sx = -sx
    g = np.sqrt(sx * sx + sy * sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(sx == 0, np.pi / 2, np.arctan(sy / np.where(sx == 0, 1.0, sx)))
    return g, alpha


def _qabf_preservation(g_x, a_x, g_f, a_f):
    """Edge preservation Q^{XF} = Q_g Q_alpha (Xydeas & Petrovic 2000, eqs. 3-6), with CDDFuse's quirk
    G = g_F (not 1) where g_X == g_F."""
    with np.errstate(divide="ignore", invalid="ignore"):
        g_rel = np.where(g_x > g_f, g_f / g_x, np.where(g_x == g_f, g_f, g_x / g_f))
    a_rel = 1 - np.abs(a_x - a_f) / (np.pi / 2)
    q_g = 0.9994 / (1 + np.exp(-15 * (g_rel - 0.5)))
    q_a = 0.9879 / (1 + np.exp(-22 * (a_rel - 0.8)))
    return q_g * q_a


@register_metric("Qabf", higher_is_better=True, value_range=(0, 1), conventions=("default", "cddfuse", "vifb"))
def qabf(a, b, f, *, convention="default"):
    """Gradient-based fusion performance Q^{AB/F} (Xydeas & Petrovic 2000, "Objective image fusion
    performance measure", Electron. Lett. 36(4), 308-309).

    Q = sum(Q^{AF} g_A + Q^{BF} g_B) / sum(g_A + g_B), where Q^{XF} multiplies sigmoids of the relative
    Sobel edge strength and orientation (Gamma_g = .9994, k_g = -15, D_g = .5; Gamma_a = .9879, k_a = -22,
    D_a = .8; weights w = g, L = 1). Higher is better; range [0, 1].

    Notes
    -----
    One definition for every convention: the code CDDFuse, VIFB and Tang all use (zero-padded 'same'
    Sobel, alpha = pi/2 where S_x = 0, and the quirk G = g_F where g_X == g_F). Sources without a single
    edge (both all black: the zero-padded Sobel sees the border of any other constant) give 0/0: NaN,
    with a warning.
    """
    x, y, z = to255(a), to255(b), to255(f)
    g_a, a_a = _qabf_edges(x)
    g_b, a_b = _qabf_edges(y)
    g_f, a_f = _qabf_edges(z)
    num = (_qabf_preservation(g_a, a_a, g_f, a_f) * g_a + _qabf_preservation(g_b, a_b, g_f, a_f) * g_b).sum()
    total_strength = (g_a + g_b).sum()
    if total_strength == 0:
        warn("Qabf is NaN: neither source has an edge (0/0 edge weights)")
        return float("nan")
    return float(num / total_strength)


def _kumar_edges(x):
    """Kumar's ``sobel_fn``: Sobel / 8 after a reflect-101 border extension; alpha = atan(g_v / g_h)
    (0 where both vanish, +-pi/2 where only g_h does)."""
    gv = correlate(x, SOBEL_X, mode="mirror") / 8
    gh = correlate(x, SOBEL_Y, mode="mirror") / 8
    g = np.sqrt(gh * gh + gv * gv)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where((gv == 0) & (gh == 0), 0.0, np.arctan(gv / gh))
    return g, alpha


def _kumar_preservation(g_x, a_x, g_f, a_f):
    with np.errstate(divide="ignore", invalid="ignore"):
        g_rel = np.where((g_x == 0) | (g_f == 0), 0.0, np.where(g_x > g_f, g_f / g_x, g_x / g_f))
    a_rel = np.abs(np.abs(a_x - a_f) - np.pi / 2) * 2 / np.pi
    q_g = 0.9999 / (1 + np.exp(-19 * (g_rel - 0.5)))
    q_a = 0.9995 / (1 + np.exp(-22 * (a_rel - 0.5)))
    return np.sqrt(q_g * q_a)


@register_metric("Nabf", higher_is_better=False, value_range=(0, 1), conventions=("default", "vifb"))
def nabf(a, b, f, *, convention="default"):
    """Modified fusion artifacts N^{AB/F} (Shreyamsha Kumar 2013, "Multifocus and multispectral image
    fusion based on pixel significance using discrete cosine harmonic wavelet transform", SIViP 7,
    1125-1143, eq. 28), the fraction of edge information that F invents.

    N = sum(N_m ((1 - Q^{AF}) w_A + (1 - Q^{BF}) w_B)) / sum(w_A + w_B), N_m = 1 where g_F > g_A and
    g_F > g_B; w_X = g_X^1.5 where g_X >= 2, else 1e-3; Q^{XF} = sqrt(Q_g Q_a) with (0.9999, 19, 0.5) and
    (0.9995, 22, 0.5). Lower is better; range [0, 1].

    Notes
    -----
    Reproduces Kumar's ``objective_fusion_perform_fn`` (as in Tang's ``analysis_nabf``) called in its
    DOCUMENTED order (F, A, B) -- the ``tang.Nabf`` column. Tang's ``analysis_Reference`` passes A as the
    fused image (``tang.Nabf_as_called``), a bug that is not reproduced. 0..255 scale (T_d = 2 is absolute).
    A constant or black F adds no edge: 0. The weights are never all zero (1e-3 below T_d), so the
    value is always defined.
    """
    x, y, z = to255(a), to255(b), to255(f)
    g_a, a_a = _kumar_edges(x)
    g_b, a_b = _kumar_edges(y)
    g_f, a_f = _kumar_edges(z)
    w_a = np.where(g_a >= 2, g_a ** 1.5, 1e-3)
    w_b = np.where(g_b >= 2, g_b ** 1.5, 1e-3)
    artifact = (g_f > g_a) & (g_f > g_b)
    loss = (1 - _kumar_preservation(g_a, a_a, g_f, a_f)) * w_a + (1 - _kumar_preservation(g_b, a_b, g_f, a_f)) * w_b
    return float((artifact * loss).sum() / (w_a + w_b).sum())
