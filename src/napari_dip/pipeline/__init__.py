"""The pipeline: a checked request → a plan of independent pieces → an executor that fits
them → assembly in plan order → one :class:`Snapshot` type back.

- :mod:`.request` checks what to restore (cheap checks only) and freezes it;
- :mod:`.plan` cuts a request into parts (slices, frames, volumes) and pieces (tiles);
- :mod:`.prepare` reads and normalises a part when its turn comes;
- :mod:`.fitting` fits one piece with the engine (torch);
- :mod:`.executors` runs pieces in this process, :mod:`.cluster` on a Dask cluster;
- :mod:`.assembly` blends and places results; :mod:`.job` and :mod:`.run` drive it all;
- :mod:`.snapshot` is what every face receives.
"""
