"""Unit conversions shared by the simulated instruments (conventions of PHYSICS.md)."""

#: Time-tagger timestamps and the bench's timeline are integer picoseconds.
PS_PER_S = 1_000_000_000_000
#: Photon energy E[eV] = HC_EV_NM / λ[nm].
HC_EV_NM = 1239.84193
