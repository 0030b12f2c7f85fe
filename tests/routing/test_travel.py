"""Travel-time sources: haversine estimate and the OSRM table client (over a mock transport)."""

from __future__ import annotations

import json

import httpx
import pytest

from routing import HaversineTravel, Location, OsrmError, OsrmTravel

DENVER = Location(lat=39.7392, lon=-104.9903)
BOULDER = Location(lat=40.0150, lon=-105.2705)


def test_haversine_uses_circuity_and_speed() -> None:
    """38.9 km great circle x 1.3 circuity at 60 km/h is about 50.6 minutes; the diagonal is zero."""
    m = HaversineTravel(speed_kmh=60, circuity=1.3).matrix([DENVER, BOULDER])
    assert m[0][0] == 0 and m[1][1] == 0
    assert m[0][1] == m[1][0]
    assert abs(m[0][1] - 38_900 * 1.3 / (60 / 3.6)) < 60


def test_osrm_client_builds_table_requests_in_chunks() -> None:
    """The client asks OSRM's table API per block of sources/destinations and assembles the matrix."""
    points = [Location(lat=40.0 + i / 100, lon=-105.0) for i in range(3)]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert request.url.path.startswith("/table/v1/driving/-105.000000,40.000000;")
        sources = [int(x) for x in request.url.params["sources"].split(";")]
        dests = [int(x) for x in request.url.params["destinations"].split(";")]
        durations = [[None if (i, j) == (2, 0) else 10.4 * i + j for j in dests] for i in sources]
        return httpx.Response(200, content=json.dumps({"code": "Ok", "durations": durations}))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    source = OsrmTravel("http://osrm.test/", client=client, max_table_size=2, unreachable_s=99_999)
    m = source.matrix(points)
    assert len(seen) == 4  # 2x2 blocks for 3 points at 2 per block
    assert m[1][2] == round(10.4 + 2)
    assert m[2][0] == 99_999


def test_osrm_error_answer_raises() -> None:
    """An OSRM error code becomes an OsrmError naming the code."""
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(200, json={"code": "InvalidQuery", "message": "bad"})
        )
    )
    with pytest.raises(OsrmError, match="InvalidQuery"):
        OsrmTravel("http://osrm.test", client=client).matrix([DENVER, BOULDER])
