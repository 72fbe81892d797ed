"""Which addresses only this machine can reach: shared by `wenda serve` (no keys needed there) and Ray builds
(a loopback cluster needs Ray kept on 127.0.0.1)."""

from __future__ import annotations

import ipaddress


def loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
