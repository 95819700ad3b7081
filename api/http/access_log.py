"""The API's access log: one line per request, when its answer has ended (a stream when it closes),
in the API's log (`data/logs/api.log` under `make run`), logger `api.access`:

    127.0.0.1 "POST /v1/completions" 200 1834ms

uvicorn's own access log is off (`--no-access-log`): it runs with `--no-proxy-headers`, so it would
name the proxy's address. This middleware sits inside the forwarded-headers one, so it names the
client's, and outside the filters, so their refusals (403, 413) are logged too. The query string is
left out (it is not needed to read the log, and keeps it short); API keys never appear.
"""

import logging

from starlette.types import Scope

from api.http.answered import AnsweredMiddleware

log = logging.getLogger("api.access")


class AccessLogMiddleware(AnsweredMiddleware):
    def answered(self, scope: Scope, status: int, elapsed_s: float) -> None:
        client = (scope.get("client") or ("-", 0))[0]
        log.info('%s "%s %s" %d %.0fms', client, scope["method"], scope["path"], status, elapsed_s * 1000)
