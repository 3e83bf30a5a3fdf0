"""The shared base at the bottom of the layer order: user errors, image I/O, colour conversion.

``common`` imports none of ``bench``, ``methods`` or ``metrics``; ``methods`` and ``metrics`` import it and
never ``bench``; ``bench`` (command line, runner, reports, studies) sits on top of all three. A test walks
every module's imports and fails on an upward import or an import cycle (tests/test_layers.py).
"""
