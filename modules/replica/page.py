"""The replica's camera page and its JSON endpoints (placeholder: routes nothing yet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from modules.replica.server import ReplicaServer


@dataclass(frozen=True)
class Response:
    """An HTTP answer the server writes as it is."""

    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class PageOptions:
    """Knobs of the camera page."""

    render_delay: tuple[float, float] = (0.2, 0.6)


def route(path: str, query: Mapping[str, Sequence[str]], server: ReplicaServer) -> Response | None:
    """Answer a page or API request, or None when ``path`` is not the page's."""
    return None
