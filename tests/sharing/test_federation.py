"""Federation in one process: a peer link pulls every page with the peer's key and says why it
fails (naming the URL) with back-off; the federation fuses the peers' tracks into the own picture
and names the node's own contributions as the partner knows them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from stratowatch.config import PeerSettings, load_settings
from stratowatch.sharing.federation import Federation, PeerLink


def _doc(track_id: int, lat: float, lon: float, **kw: Any) -> dict[str, Any]:
    doc = {
        "track_id": track_id,
        "time_s": 1000.0,
        "status": "confirmed",
        "lat_deg": lat,
        "lon_deg": lon,
        "alt_m": 19_000.0,
        "velocity_enu_mps": [12.0, 2.0, 0.0],
        "position_sigma_m": [300.0, 300.0, 600.0],
        "first_time_s": 100.0,
        "sensors": [],
        "identities": [],
        "classification": {"label": "balloon"},
        "releasable_to": ["CAN", "USA"],
    }
    doc.update(kw)
    return doc


def _peer_app(docs: list[dict[str, Any]], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("x-api-key") != "sw_key":
            return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "credentials"}})
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        return httpx.Response(
            200,
            json={
                "items": docs[offset : offset + limit],
                "total": len(docs),
                "limit": limit,
                "offset": offset,
            },
        )

    return httpx.MockTransport(handler)


def test_a_link_pulls_every_page_with_the_peers_key() -> None:
    docs = [_doc(i, 45.0, -100.0 + i * 0.01) for i in range(2500)]
    seen: list[httpx.Request] = []
    peer = PeerSettings(partner="USA", url="http://usa.test:8000/", api_key="sw_key")
    link = PeerLink(peer, transport=_peer_app(docs, seen))

    async def go() -> bool:
        try:
            return await link.poll_once()
        finally:
            await link.close()

    assert asyncio.run(go())
    assert len(link.tracks) == 2500 and link.status.state == "up" and link.status.tracks == 2500
    assert [r.url.params["offset"] for r in seen] == ["0", "1000", "2000"]
    assert {r.url.path for r in seen} == {"/api/v1/tracks"}
    assert link.backoff_s() == peer.period_s


def test_a_failing_link_names_the_url_and_backs_off() -> None:
    seen: list[httpx.Request] = []
    peer = PeerSettings(partner="USA", url="http://usa.test:8000", api_key="wrong", period_s=1.0)
    link = PeerLink(peer, max_backoff_s=5.0, transport=_peer_app([], seen))

    async def go() -> None:
        try:
            for _ in range(4):
                assert not await link.poll_once()
        finally:
            await link.close()

    asyncio.run(go())
    st = link.status
    assert st.state == "down" and st.failures == 4
    assert st.last_error is not None
    assert st.last_error.startswith("http://usa.test:8000/api/v1/tracks?limit=1000&offset=0: HTTP 401")
    assert link.backoff_s() == 5.0  # 1 s doubled per failure, capped


def test_an_unreachable_peer_is_down_with_the_url_in_the_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    link = PeerLink(
        PeerSettings(partner="USA", url="https://usa.test:9"), transport=httpx.MockTransport(refuse)
    )

    async def go() -> bool:
        try:
            return await link.poll_once()
        finally:
            await link.close()

    assert not asyncio.run(go())
    assert link.status.last_error == "https://usa.test:9: ConnectError: connection refused"


def test_a_missing_ca_file_is_named_at_start_up(tmp_path: Any) -> None:
    from stratowatch.config import ConfigError

    config = tmp_path / "sw.toml"
    config.write_text(
        '[node]\npartner = "CAN"\n[[federation.peers]]\npartner = "USA"\nurl = "https://usa:8000"\n'
        'ca_file = "usa-ca.pem"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"federation.peers\[0\].ca_file: file not found"):
        load_settings(config, env={})
    config.write_text('[[federation.peers]]\npartner = "USA"\nurl = "usa:8000"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"federation.peers\[0\].url: must be http"):
        load_settings(config, env={})


def _federation(remote: list[dict[str, Any]]) -> Federation:
    settings = load_settings(
        None,
        env={},
        check_files=False,
        node={"partner": "CAN"},
        partners=[{"id": "USA"}],
        federation={"peers": [{"partner": "USA", "url": "http://usa.test:8000"}]},
    )
    fed = Federation(settings)
    fed.links[0].tracks = remote
    return fed


def test_federation_fuses_and_names_own_tracks_as_the_partner_knows_them() -> None:
    remote = [
        _doc(7, 49.0, -109.999, first_time_s=900.0, sensors=["radar-C"]),  # the shared balloon
        _doc(8, 30.0, -90.0, first_time_s=50.0),  # only USA holds it
        _doc(9, 31.0, -91.0, releasable_to=["USA"]),  # not releasable to CAN: never used
        _doc(10, 32.0, -92.0, status="tentative"),  # tentative: not fused
    ]
    fed = _federation(remote)
    # the own picture: the balloon (radars A+B) and a national-only track (radar B)
    fed.set_local("", [_doc(1, 49.0, -110.0, sensors=["radar-A", "radar-B"]), _doc(2, 50.0, -105.0)])
    # the picture kept for USA: the balloon from radar A only, numbered in USA's block
    fed.set_local("USA", [_doc(1_000_000_001, 49.0005, -110.0, first_time_s=120.0)])
    picture = fed.fuse_now()
    by_id = {t["global_id"]: t for t in picture.items}
    assert set(by_id) == {"CAN:1000000001", "CAN:2", "USA:8"}
    balloon = by_id["CAN:1000000001"]
    assert balloon["nodes"] == ["CAN", "USA"]
    can, usa = balloon["contributors"]
    assert (can["track_id"], can["name"], can["local"]) == (1, "CAN:1000000001", True)
    assert (usa["track_id"], usa["name"], usa["local"]) == (7, "USA:7", False)
    assert usa["sensors"] == ["radar-C"]
    assert balloon["class"] == "balloon"
    # CI of two equally certain estimates that may share information: no tighter than either
    assert balloon["position_sigma_m"][:2] == pytest.approx([300.0, 300.0], rel=1e-3)
    assert by_id["USA:8"]["nodes"] == ["USA"]
    assert by_id["CAN:2"]["nodes"] == ["CAN"]

    # USA's track ends; the balloon stays in CAN's picture under the same id
    fed.links[0].tracks = [remote[1]]
    fed.set_local("", [_doc(1, 49.0, -109.99, time_s=1100.0, sensors=["radar-A", "radar-B"])])
    fed.set_local("USA", [_doc(1_000_000_001, 49.0, -109.99, time_s=1100.0, first_time_s=120.0)])
    assert [t["global_id"] for t in fed.fuse_now().items] == ["CAN:1000000001", "USA:8"]


def test_federation_with_nothing_to_fuse_is_empty() -> None:
    fed = _federation([])
    picture = fed.fuse_now()
    assert picture.items == [] and picture.epoch_s is None
