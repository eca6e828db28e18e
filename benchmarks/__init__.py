"""napari-dip's benchmarks: ``python -m benchmarks NAME`` (``--help`` lists them).

Each writes ``benchmarks/results/NAME….json`` (and a markdown table), which the docs render.
"""
