"""GET /api/whoami: who the caller's token says it is (tenant, rights). The CLI asks
it when it has a token but not the workers' tokens file, so that it stores sources in
its own tenant's area and refuses a wrong token before it sends anything."""

from __future__ import annotations

from faust.web import Request, Response, View

from pipeline.models import PRIORITIES
from pipeline.web.answers import principal_of


class WhoAmI(View):
    async def get(self, request: Request) -> Response:
        caller = principal_of(request)
        return self.json({"tenant": caller.tenant, "admin": caller.admin,
                          "priorities": [p for p in PRIORITIES if p in caller.priorities]})


ROUTES = {"/api/whoami": WhoAmI}
