"""moto's server, with its requests applied one at a time, on keep-alive connections.

moto's threaded server applies concurrent requests without locking, so two conditional writes
to one item can both pass their condition: DynamoDB never lets that happen (a conditional write
on an item is atomic). Serialising the backend restores that guarantee for the tests that race
writers on purpose; connections are still served by threads, so keep-alive cannot stall anyone.

The server is waitress rather than werkzeug's development server, which closes the connection
after every response: DynamoDB and Secrets Manager keep HTTP/1.1 connections open, so a client
on werkzeug would pay a TCP connect per call that it never pays on AWS (the benchmarks of the
deployed path count that CPU).
"""
import sys
import threading

import waitress
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

host, port = sys.argv[1], int(sys.argv[2])
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialised(environ, start_response):
    with lock:
        # Build the whole response under the lock.
        return [b"".join(app(environ, start_response))]


waitress.serve(serialised, host=host, port=port, threads=16, connection_limit=1000,
               channel_timeout=300, ident=None, _quiet=True)
