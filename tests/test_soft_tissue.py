"""STC (metrics/soft_tissue.py): brain mask from a CT-MRI pair, contrast retained inside it."""
import numpy as np
import pytest

import metrics
from metrics._filters import MetricWarning
from metrics.soft_tissue import brain_mask, soft_tissue_contrast


def synthetic_head(size=96, seed=0):
    """CT: bright skull ring around a flat grey brain; MRI: dark skull, textured brain tissue."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] - size / 2 + 0.5
    r = np.hypot(x, y)
    skull = (r > 0.36 * size) & (r < 0.44 * size)
    inside = r <= 0.36 * size
    ct = np.where(skull, 0.95, np.where(inside, 0.3, 0.0))
    texture = 0.5 + 0.25 * np.sin(x / 2.5) * np.cos(y / 3.5) + 0.05 * rng.standard_normal((size, size))
    mri = np.where(skull, 0.05, np.where(inside, np.clip(texture, 0.1, 1.0), 0.0))
    return ct, mri, skull, inside


def test_brain_mask_is_inside_the_skull_and_excludes_it():
    ct, mri, skull, inside = synthetic_head()
    mask = brain_mask(ct, mri)
    assert mask.sum() > 0.5 * inside.sum()
    assert not (mask & skull).any()
    assert not (mask & ~inside).any()                 # nothing outside the skull


def test_mri_copy_scores_one_and_flat_ct_scores_much_lower():
    ct, mri, _, _ = synthetic_head()
    assert soft_tissue_contrast(ct, mri, mri) == pytest.approx(1.0, abs=1e-9)
    flat_bright = np.maximum(ct, mri)                 # fine where MRI is brighter...
    flat_bright[ct > 0.2] = np.maximum(ct, 0.6)[ct > 0.2]   # ...but a flat bright CT over the brain
    flat = soft_tissue_contrast(ct, mri, flat_bright)
    assert flat < 0.2
    half = soft_tissue_contrast(ct, mri, 0.5 * (ct + mri))   # the average keeps the texture at half contrast
    assert flat < half < 1.0
    assert soft_tissue_contrast(ct, mri, 1.0 - mri) < 0   # inverted soft-tissue contrast scores below zero


def test_no_brain_region_gives_nan_with_a_warning():
    rng = np.random.default_rng(1)
    a, b = np.zeros((64, 64)), rng.random((64, 64))
    with pytest.warns(MetricWarning, match="no brain region"):
        assert np.isnan(soft_tissue_contrast(a, b, b))


def test_registered_and_computed_by_the_registry():
    ct, mri, _, _ = synthetic_head()
    m = metrics.get_metric("STC")
    assert m.higher_is_better and m.value_range == (-1, 1)
    assert metrics.compute(ct, mri, mri, names=["STC"])["STC"] == pytest.approx(1.0)


def test_harvard_ct_mri_pairs_have_a_brain_region(harvard_dir):
    from common.io import read_image
    ct_files = sorted((harvard_dir / "CT-MRI" / "test" / "CT").glob("*.png"))[:4]
    assert ct_files
    for path in ct_files:
        ct, mri = read_image(path), read_image(path.parent.parent / "MRI" / path.name)
        mask = brain_mask(ct, mri)
        assert 0.05 < mask.mean() < 0.6
        assert soft_tissue_contrast(ct, mri, ct) < soft_tissue_contrast(ct, mri, 0.5 * (ct + mri))


def test_convex_hull_is_skimages_mask():
    """The exact row-interval fill of the hull gives skimage's convex_hull_image mask, points on the
    hull's edges included: skull rings, random specks and blobs, lines, single pixels, touching borders."""
    from scipy import ndimage
    from skimage.morphology import convex_hull_image

    from metrics.soft_tissue import _convex_hull
    rng = np.random.default_rng(7)
    masks = [synthetic_head(size, seed)[2] for size, seed in ((96, 0), (61, 1))]
    masks += [np.eye(7, dtype=bool), np.eye(9, 5, 2, dtype=bool)[::-1], np.ones((1, 1), bool), np.ones((1, 9), bool),
              np.ones((9, 1), bool)]
    for k in range(200):
        x = rng.random(tuple(rng.integers(1, 50, 2))) < rng.choice([0.002, 0.02, 0.1, 0.6])
        masks.append(ndimage.binary_dilation(x, iterations=int(rng.integers(1, 3))) if k % 3 == 0 else x)
    compared = 0
    for x in masks:
        if x.any():
            assert np.array_equal(_convex_hull(x), convex_hull_image(x))
            compared += 1
    assert compared > 150
