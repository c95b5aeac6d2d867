"""The web layer's authentication as a real aiohttp server runs it: bearer tokens, peer
requests signed with the group key (never a forwarded token), and bodies read whole
within their limit however they arrive."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from pipeline.group import GroupKey, PeerHosts
from pipeline.tenancy import Principal, Tenancy
from pipeline.web.bodies import read_body
from pipeline.web.server import auth_middleware, json_errors

ACME = Principal("acme", priorities=frozenset({"normal"}), secret=b"acme-token-0123456789")
GROUP = GroupKey(b"the-group")


async def _whoami(request: web.Request) -> web.Response:
    principal = request["principal"]
    body = await read_body(request, 1024) if request.method == "POST" else b""
    return web.json_response({"tenant": principal.tenant, "admin": principal.admin,
                              "body": body.decode()})


def _serve(check):
    async def main():
        app = web.Application(middlewares=[json_errors, auth_middleware(
            Tenancy([ACME]), GROUP, lambda: ("127.0.0.1", server.port))])
        app.router.add_route("*", "/api/whoami", _whoami)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with ClientSession() as session:
                await check(session, server)
        finally:
            await server.close()
    asyncio.run(main())


def test_a_peer_request_speaks_for_the_caller_it_names_and_nobody_else():
    async def check(session: ClientSession, server: TestServer) -> None:
        url = f"http://127.0.0.1:{server.port}/api/whoami?scope=local"
        me = ("127.0.0.1", server.port)
        signed = GROUP.peer_headers("POST", me, "/api/whoami?scope=local", ACME, b'{"a":1}')
        async with session.post(url, data=b'{"a":1}', headers=signed) as reply:
            assert reply.status == 200
            assert await reply.json() == {"tenant": "acme", "admin": False, "body": '{"a":1}'}
        for headers, data in [
                (signed, b'{"a":2}'),  # another body
                (GROUP.peer_headers("POST", ("127.0.0.1", 1), "/api/whoami?scope=local", ACME,
                                    b'{"a":1}'), b'{"a":1}'),  # signed for another peer
                (GroupKey(b"rogue").peer_headers("POST", me, "/api/whoami?scope=local", ACME,
                                                 b'{"a":1}'), b'{"a":1}')]:
            async with session.post(url, data=data, headers=headers) as reply:
                assert reply.status == 401
                assert (await reply.json())["code"] == "unauthenticated"
        bearer = {"Authorization": "Bearer acme-token-0123456789"}
        async with session.get(url, headers=bearer) as reply:
            assert (await reply.json())["tenant"] == "acme"

    _serve(check)


def test_a_body_in_pieces_is_read_whole_and_an_oversized_one_is_413():
    async def pieces(*parts: bytes):
        for part in parts:
            yield part
            await asyncio.sleep(0.05)  # separate writes: separate segments and chunks

    async def check(session: ClientSession, server: TestServer) -> None:
        url = f"http://127.0.0.1:{server.port}/api/whoami"
        bearer = {"Authorization": "Bearer acme-token-0123456789"}
        async with session.post(url, data=pieces(b'{"job', b'_id": 1}'),
                                headers=bearer) as reply:
            assert json.loads((await reply.json())["body"]) == {"job_id": 1}
        async with session.post(url, data=pieces(*[b"x" * 600] * 4), headers=bearer) as reply:
            assert reply.status == 413 and (await reply.json())["code"] == "too_large"

    _serve(check)


@pytest.mark.parametrize("host", ["203.0.113.7", "rogue.example.com"])
def test_a_member_outside_the_trusted_hosts_is_never_asked(host):
    from types import SimpleNamespace

    from yarl import URL

    from pipeline.web.peers import fetch_json

    asked = []
    app = SimpleNamespace(http_client=SimpleNamespace(request=lambda *a, **k: asked.append(a)),
                          runtime=SimpleNamespace(group=GROUP,
                                                  peer_hosts=PeerHosts("127.0.0.0/8")))
    status, body = asyncio.run(fetch_json(app, URL(f"http://{host}:6066/api/jobs"), ACME))
    assert (status, body["code"], asked) == (502, "peer_untrusted", [])
