"""moto in server mode, as `python -m moto.server` runs it, but with DynamoDB
requests taken one at a time.

DynamoDB makes each conditional write and each transaction atomic: two
racing `PutItem`s on condition `attribute_not_exists(pk)` never both succeed.
moto checks the condition and writes in two steps of Python on a threaded
server, so under a race both may. The tests race writes on purpose (twenty
identical deliveries, twenty claims of one step) to hold our code to
DynamoDB's guarantee; this lock gives moto that guarantee, and nothing else
changes: other services are served concurrently, as moto does.

    python scripts/moto-server.py -H 127.0.0.1 -p PORT
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class OneDynamoDbRequestAtATime:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                # The whole answer is made under the lock (DynamoDB's are small).
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        OneDynamoDbRequestAtATime(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
