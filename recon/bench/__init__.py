"""Benchmarks of recon at scale (issue 6): ``recon bench --size XS|S|M|L``.

* :mod:`recon.bench.harness`: worlds per size (cached), the sandbox in its own process, every
  stage timed (:func:`run_bench`);
* :mod:`recon.bench.report`: ratios, targets, ``bench/results/<date>-<size>.json`` and the
  markdown table;
* :mod:`recon.bench.world`: a day passes with 1 % new events (:func:`advance_world`).
"""
