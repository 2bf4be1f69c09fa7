"""Keys created while API keys were off (issue 17 item 1): anyone who reached an open
node could mint an admin key. Such keys are marked ``minted_open``, listed in a
start-up warning once keys are turned on, and refused until an admin confirms
(``POST /v1/admin/api-keys/{id}/confirm``) or deletes them."""

from __future__ import annotations

from pathlib import Path

from support.server import ServerProcess

ROOT_KEY = "root-minted-key-" + "9d" * 16
KEYS_ON = {"STEMEDB_AUTH_ENABLED": "true", "STEMEDB_ROOT_API_KEY": ROOT_KEY}
ADMIN = {"X-API-Key": ROOT_KEY}


def test_an_admin_key_minted_while_open_is_refused_after_keys_are_turned_on(
    tmp_path: Path,
) -> None:
    data, log = tmp_path / "data", tmp_path / "log"
    node = ServerProcess(data, log, isolated=True)
    try:
        with node.client() as client:
            made = client.post("/v1/admin/api-keys", json={"name": "anon", "role": "admin"})
            assert made.status_code == 201 and made.json()["minted_open"] is True
            other = client.post("/v1/admin/api-keys", json={"name": "spare", "role": "writer"})
            early = client.post(f"/v1/admin/api-keys/{made.json()['id']}/confirm")
            assert early.status_code == 409 and early.json()["error"]["code"] == "api_keys_off"
    finally:
        node.stop()
    anon, spare = made.json(), other.json()

    node = ServerProcess(data, log, isolated=True, **KEYS_ON)
    try:
        warning = [
            line for line in node.log_lines() if "keys were created while API keys were off" in line
        ]
        assert len(warning) == 1 and anon["id"] in warning[0] and spare["id"] in warning[0]
        with node.client() as client:
            refused = client.get("/v1/admin/api-keys", headers={"X-API-Key": anon["secret"]})
            assert refused.status_code == 403, refused.text
            error = refused.json()["error"]
            assert error["code"] == "api_key_unconfirmed"
            assert f"/v1/admin/api-keys/{anon['id']}/confirm" in error["message"]
            # an unconfirmed key cannot confirm itself
            itself = client.post(
                f"/v1/admin/api-keys/{anon['id']}/confirm", headers={"X-API-Key": anon["secret"]}
            )
            assert itself.status_code == 403
            listed = {
                k["id"]: k for k in client.get("/v1/admin/api-keys", headers=ADMIN).json()["keys"]
            }
            assert listed[anon["id"]]["minted_open"] is True
            assert listed["root"]["minted_open"] is False

            confirmed = client.post(f"/v1/admin/api-keys/{anon['id']}/confirm", headers=ADMIN)
            assert confirmed.status_code == 200 and confirmed.json()["minted_open"] is False
            accepted = client.get("/v1/admin/api-keys", headers={"X-API-Key": anon["secret"]})
            assert accepted.status_code == 200

            deleted = client.delete(f"/v1/admin/api-keys/{spare['id']}", headers=ADMIN)
            assert deleted.status_code == 200
            gone = client.get("/v1/subjects", headers={"X-API-Key": spare["secret"]})
            assert gone.status_code == 401
    finally:
        node.stop()

    node = ServerProcess(data, log, isolated=True, **KEYS_ON)  # confirmation is durable
    try:
        starts = [line for line in node.log_lines() if "StemeDB" in line and "ready" in line]
        assert len(starts) == 3
        assert (
            sum("keys were created while API keys were off" in line for line in node.log_lines())
            == 1
        )
        with node.client() as client:
            again = client.get("/v1/admin/api-keys", headers={"X-API-Key": anon["secret"]})
            assert again.status_code == 200
    finally:
        node.stop()


def test_a_node_whose_only_admin_key_was_minted_open_does_not_start(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "log"
    node = ServerProcess(data, log, isolated=True)
    try:
        with node.client() as client:
            made = client.post("/v1/admin/api-keys", json={"name": "anon", "role": "admin"})
            assert made.status_code == 201
    finally:
        node.stop()
    try:
        ServerProcess(data, log, isolated=True, STEMEDB_AUTH_ENABLED="true")
    except RuntimeError as exc:
        assert "no usable admin API key" in str(exc)
    else:
        raise AssertionError("a node with only an unconfirmed admin key started")
