"""A local Microsoft Graph (Intune subset) and Entra token issuer, served over HTTPS on loopback.

Run it with ``python -m localdev.graphsim serve``; drive it from tests with
:func:`localdev.graphsim.testing.running_simulator` and :class:`localdev.graphsim.control.SimControl`.
"""

from __future__ import annotations
