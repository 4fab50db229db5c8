"""The protocol of a claim: scoring against the true pose, the phrase list of the action space, the method
comparison, the benchmark (rows, units, paired intervals, the positive control) and their tables. May import
:mod:`stickworld.world` and :mod:`stickworld.networks`."""
