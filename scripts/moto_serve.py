"""moto server with DynamoDB requests serialised.

moto 5.2.5 serves requests on threads, but its DynamoDB backend is not thread-safe:
TransactWriteItems deep-copies the table while other threads write to it and fails
with "dictionary changed size during iteration" (HTTP 500, HTML body). Real DynamoDB
has no such race, so we serialise DynamoDB calls here and leave everything else
(SQS long polls above all) concurrent.

usage: python scripts/moto_serve.py HOST PORT
"""

import os
import signal
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

_dynamodb = threading.Lock()


class SerialiseDynamoDB:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with _dynamodb:
                # Consume the response inside the lock: moto builds it lazily.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SerialiseDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
