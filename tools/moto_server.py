"""moto's server, with its requests applied one at a time.

moto's threaded server applies concurrent requests without locking, so two conditional writes
to one item can both pass their condition: DynamoDB never lets that happen (a conditional write
on an item is atomic). Serialising the backend restores that guarantee for the tests that race
writers on purpose; connections are still served by threads, so keep-alive cannot stall anyone.
"""
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

host, port = sys.argv[1], int(sys.argv[2])
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialised(environ, start_response):
    with lock:
        # Build the whole response under the lock.
        return list(app(environ, start_response))


run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)
