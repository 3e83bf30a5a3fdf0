"""Speed and memory measurements, each a script printing a table (``python -m bench.speed.<name>``):
``metrics`` (the metric suite on one core), ``baseline`` (the classical baselines against Octave),
``densegan`` (the GAN against the convolution peak and IFCNN, training throughput, large-image memory),
``startup`` (command-line start-up), ``volume`` (a clinical volume slice by slice). The machine is shared:
each compares rows measured side by side in one run, interleaved."""
