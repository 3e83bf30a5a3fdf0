"""Shared multi-scale transforms and coefficient-selection rules used by the classical fusion methods.

This package registers no method: ``methods/__init__`` imports it like any module of ``methods/``,
so it must stay free of ``@register_method`` calls. Each module holds one transform family with its
exact inverse (perfect reconstruction is tested in ``tests/test_transforms.py``):

* ``pyramid``  -- Laplacian (Burt & Adelson 1983) and ratio-of-low-pass (Toet 1989) pyramids, as in
  O. Rockinger's fusion toolbox (``es2`` padding with zero corners, ``dec2``/``undec2``).
* ``dwt``      -- orthonormal DWT with periodic extension (``dwt2(., 'db1', 'mode', 'per')``).
* ``dtcwt``    -- Kingsbury's dual-tree complex wavelet transform (``dtwavexfm2``/``dtwaveifm2``).
* ``nsct``     -- nonsubsampled contourlet transform (da Cunha, Zhou, Do 2006).
* ``nsst``     -- nonsubsampled shearlet transform (``nsst_dec2``/``nsst_rec2``, as in Yin et al. 2019).
* ``rules``    -- coefficient selection rules (``selc`` max-abs with consistency check, averaging).
"""
