"""Who may push: the token in the path, and an optional CIDR allow-list per token.

``push_allow`` is keyed by a *fingerprint* of the token, never the token itself: the allow-list
lives in a ConfigMap, which is not a secret, while the tokens live in a Secret. The fingerprint
is the leading hex digits (8 to 64, 12 recommended) of the token's SHA-256::

    printf %s "$TOKEN" | sha256sum | cut -c1-12

A token with an entry may push only from those networks; a token without one from anywhere.
IPv4-mapped IPv6 peers (``::ffff:10.0.0.5``) are matched as IPv4.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Mapping, Sequence

from app.auth import token_matches

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def token_fingerprint(token: str, digits: int = 12) -> str:
    """Return the first ``digits`` hex digits of the token's SHA-256 (the allow-list key)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:digits]


class PushAccess:
    """Decides whether a path token, sent from an address, may push."""

    def __init__(self, tokens: Sequence[str], allow: Mapping[str, Sequence[str]]) -> None:
        self._tokens = tuple(tokens)
        self._networks: dict[str, tuple[IPNetwork, ...]] = {}
        used: set[str] = set()
        for token in self._tokens:
            digest = token_fingerprint(token, 64)
            keys = [key for key in allow if digest.startswith(key.lower())]
            if keys:  # listed: only these networks (none at all means denied)
                used.update(keys)
                self._networks[token] = tuple(
                    ipaddress.ip_network(c, strict=False) for key in keys for c in allow[key]
                )
        for key in set(allow) - used:
            log.warning("push allow-list entry %s matches no configured token", key)

    def token_ok(self, token: str) -> bool:
        """Constant-time check that ``token`` is one of the API tokens."""
        return bool(token) and token_matches(token, self._tokens)

    def address_ok(self, token: str, remote_ip: str | None) -> bool:
        """Return True when the (valid) ``token`` may push from ``remote_ip``."""
        networks = self._networks.get(token)
        if networks is None:
            return True
        try:
            address = ipaddress.ip_address((remote_ip or "").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in networks if net.version == address.version)
