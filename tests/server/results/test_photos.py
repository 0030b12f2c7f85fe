"""Through a real CouchDB-compatible server: a result document followed twice is one result; its photo
attachment is copied onto the server and served to an advisor and its own CSFR, refused to another CSFR."""

# ruff: noqa: F401, F811  (the sync fixtures are imported from test_sync and used as arguments)
from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from contracts.codes import Role
from server.results import service as results
from server.results.models import FieldOutcome, ResultPhoto, ReviewItem
from server.sync import service as sync
from tests.server.results.conftest import reading, result_doc
from tests.server.sync.test_sync import SECRET, admin, couch, tablet

pytestmark = pytest.mark.couchdb

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"  # a small JPEG-shaped blob


def test_followed_twice_one_result_and_its_photo_is_served_to_office_and_owner_only(
    client, login, admin, couch, db_session, tech, field_order, make_technician
):
    """Follow, lose the checkpoint, follow again: one result, one review item. The attachment is fetched
    into the database; an advisor and the CSFR who took it get the bytes, another CSFR a 403."""
    sync.provision(admin=admin, tech=tech, secret=SECRET)
    order = field_order("leak_investigation")
    fields = {"form": "investigation", "leak_found": False, "customer_informed": True, "findings": "dry"}
    body = result_doc(order, tech, fields=fields, readings=[reading(order, 1100.0)],
                      photos=[{"attachment": "meter.jpg", "caption": "the register"}])  # fmt: skip
    body["_attachments"] = {
        "meter.jpg": {"content_type": "image/jpeg", "data": base64.b64encode(JPEG).decode()}
    }
    with tablet(couch, tech) as t:
        assert t.put(f"/{body['_id']}", json=body).status_code == 201
    sync.follow(db_session=db_session, admin=admin, techs=[tech])
    checkpoint = db_session.get(sync.SyncCheckpoint, sync.database_for(tech))
    db_session.delete(checkpoint)
    db_session.flush()
    sync.follow(db_session=db_session, admin=admin, techs=[tech])
    made = db_session.scalars(select(FieldOutcome).where(FieldOutcome.order_id == order.id)).all()
    assert len(made) == 1 and made[0].kind == "investigation"
    assert (
        db_session.scalar(
            select(func.count()).select_from(ReviewItem).where(ReviewItem.result_id == made[0].id)
        )
        == 1
    )

    photo = db_session.scalar(select(ResultPhoto).where(ResultPhoto.result_id == made[0].id))
    assert photo.content is None and photo.digest.startswith("md5-")
    assert results.fetch_photos(db_session=db_session, admin=admin) == 1
    db_session.refresh(photo)
    assert photo.content == JPEG and photo.length == len(JPEG)

    advisor = client.get(f"/api/results/photos/{photo.id}", headers=login(Role.ADVISOR))
    assert advisor.status_code == 200 and advisor.content == JPEG
    assert advisor.headers["content-type"] == "image/jpeg"
    owner = client.get(f"/api/results/photos/{photo.id}", headers=login(Role.CSFR, technician=tech))
    assert owner.status_code == 200 and owner.content == JPEG
    other = make_technician(code="OTHER1")
    refused = client.get(f"/api/results/photos/{photo.id}", headers=login(Role.CSFR, technician=other))
    assert refused.status_code == 403 and "only the photos they took" in refused.json()["error"]["message"]
