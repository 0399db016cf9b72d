"""The ``cryoscope simulate-night`` and ``cryoscope export`` sub-commands (:mod:`.cli`), apart
from the modules they drive so that registering them imports nothing heavy."""
