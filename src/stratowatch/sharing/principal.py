"""Who is calling: a partner's user, service account or API key, with its scopes.

The API's authentication turns a request's credentials into a :class:`Principal`; everything
after that (which picture it reads, which endpoints it may call) asks the principal.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Every scope a principal may hold.
SCOPES: tuple[str, ...] = (
    "tracks:read",
    "observations:read",
    "observations:write",
    "alerts:read",
    "alerts:ack",
    "admin",
)

#: The audience of the node's own, full picture.
OWN = ""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``partner`` is the organisation (``"CAN"``); ``audience`` is the picture it reads: ``""``
    (:data:`OWN`) when it belongs to the partner that runs this node, else its partner code, whose
    picture is rebuilt from only what is released to that partner. ``kind`` is ``"user"``,
    ``"service"`` or ``"key"``.
    """

    subject: str
    partner: str
    scopes: frozenset[str]
    kind: str = "user"
    audience: str = OWN

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def is_own(self) -> bool:
        return self.audience == OWN


def audience_for(partner: str, node_partner: str) -> str:
    """The picture a caller of ``partner`` reads on a node run by ``node_partner``."""
    return OWN if partner == node_partner else partner
