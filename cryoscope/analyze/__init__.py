"""The ``cryoscope analyze`` sub-command (:mod:`.cli`): kept apart from the analysis package so
that registering it imports nothing of the analysis stack."""
