"""The test hub itself answers like kojihub: signatures, faults, multicall, uploads, Range."""

from __future__ import annotations

import base64
import hashlib

import koji
import pytest
import requests

from tests.kojihub.fixtures import PROFILE, client_config, hub_assets, koji_hub  # noqa: F401


@pytest.fixture
def session(koji_hub, tmp_path):
    opts = koji.read_config(PROFILE, user_config=str(client_config(koji_hub, tmp_path / "k.conf")))
    s = koji.ClientSession(opts["server"], koji.grab_session_options(opts))
    s.ssl_login(opts["cert"], None, opts["serverca"])
    return s


def test_wrong_arguments_are_parameter_errors(session):
    with pytest.raises(koji.ParameterError, match="Invalid type for value '1'"):
        session.buildImageOz(1, "19", ["x86_64"], "f19-candidate", "https://x/$arch/")
    with pytest.raises(koji.ParameterError):
        session.getTaskInfo(1, bogus=True)
    with pytest.raises(koji.GenericError, match="Invalid method: buildImage$"):
        session.buildImage("n", "v", "x86_64", "t", "ks", "livecd")


def test_multicall_isolates_faults_and_has_the_system_alias(session):
    with session.multicall() as m:
        hello = m.hello()
        bad = m.getTaskResult(123456)
        info = m.getTaskInfo([1, 2])
    assert hello.result == "Hello World" and info.result == [None, None]
    with pytest.raises(koji.GenericError, match="No such task"):
        bad.result
    raw = session._callMethod("system.multicall", ([{"methodName": "hello", "params": []}],))
    assert raw == [["Hello World"]]


def test_legacy_upload_file_and_upload_path_checks(session, koji_hub):
    data = b"text\n" * 100
    digest = hashlib.sha256(data).hexdigest()
    assert session.uploadFile("cli-image/x", "a.ks", len(data), ("sha256", digest), 0,
                              base64.b64encode(data).decode())
    assert session.uploadFile("cli-image/x", "a.ks", len(data), ("sha256", digest), -1, "")
    assert session.checkUpload("cli-image/x", "a.ks")["size"] == len(data)
    assert (koji_hub.hub.topdir / "work/cli-image/x/a.ks").read_bytes() == data
    for path, name in (("../etc", "a.ks"), ("cli-image/x", "../a.ks"), ("tasks/1/1", "a.ks")):
        with pytest.raises(koji.GenericError, match="Invalid upload|only the host"):
            session.uploadFile(path, name, 1, ("sha256", hashlib.sha256(b"x").hexdigest()), 0,
                               base64.b64encode(b"x").decode())


def test_files_are_served_with_range(koji_hub):
    (koji_hub.hub.topdir / "work" / "f").write_bytes(bytes(range(256)) * 4)
    url, ca = f"{koji_hub.topurl}/work/f", str(koji_hub.certs.ca)
    part = requests.get(url, headers={"Range": "bytes=1000-"}, verify=ca)
    assert part.status_code == 206 and part.content == (bytes(range(256)) * 4)[1000:]
    assert part.headers["Content-Range"] == "bytes 1000-1023/1024"
    assert requests.get(url, headers={"Range": "bytes=2000-"}, verify=ca).status_code == 416
    assert requests.get(f"{koji_hub.topurl}/../../etc/passwd", verify=ca).status_code == 404


def test_debug_logs_never_carry_the_koji_session_key(koji_hub, caplog):
    """koji logs its request headers (Koji-Session-Key) with debug_xmlrpc, and old-style hubs
    take the key in the URL that urllib3 logs: --debug masks both."""
    import logging

    from rel_eng import redact

    redact.install()  # what the CLI does first
    session = koji.ClientSession(koji_hub.server_url, {"serverca": str(koji_hub.certs.ca),
                                                        "debug_xmlrpc": True})
    with caplog.at_level(logging.DEBUG):
        session.ssl_login(str(koji_hub.certs.clients["releng"]), None, str(koji_hub.certs.ca))
        assert session.getLoggedInUser()["name"] == "releng"
        key = session.sinfo["session-key"]
        logging.getLogger("urllib3.connectionpool").debug(
            '%s "POST /kojihub?session-id=%s&session-key=%s&callnum=3 HTTP/1.1" 200 0',
            koji_hub.server_url, session.sinfo["session-id"], key)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Koji-Session-Key" in text and "session-key=***" in text  # logged, masked
    assert key not in text and key.split("-", 1)[1] not in text
    session.logout()
