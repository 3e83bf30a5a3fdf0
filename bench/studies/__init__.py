"""Studies that train, score and choose, reusing the library: ``plus`` (the issue-#6 options of the
dense-block GAN, chosen on the validation parts; ``python -m bench.studies.plus``) and ``peers_parity`` (the
deep peers against the authors' own outputs; ``python -m bench.studies.peers_parity``)."""
