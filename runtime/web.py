"""nameko's HTTP entrypoint, bound per service.

nameko reads one ``WEB_SERVER_ADDRESS`` for every container in a process. Here a
process that runs several services (tests, benchmarks) can give each its own address
with ``WEB_SERVER_ADDRESSES: {service: "host:port"}``; with no address configured at
all the server binds an ephemeral port on loopback instead of clashing on :8000.

Each request gets one log line: the entrypoint's (``runtime.ops``), or ``http refused``
for a request no entrypoint takes. Health probes and metrics scrapes get none.

Request headers are read by :mod:`runtime.headers` (installed on import), not by the
``email`` package.
"""
import logging
import socket

import eventlet
from nameko import config
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp, parse_address
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from . import headers, jsoncodec
from .workers import SignatureOnce

log = logging.getLogger(__name__)
headers.install()


def json_response(status, body):
    """``body`` as a JSON answer (what JSON does not know, a date say, as its text)."""
    return Response(jsoncodec.dumpb(body, default=str), status=status, mimetype="application/json")


#: what werkzeug's ``Map.bind_to_environ`` reads of a request besides its path, method and
#: query: the host, the scheme (and a WebSocket upgrade) and the script's root
_BINDING = ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme", "HTTP_CONNECTION", "HTTP_UPGRADE",
            "SCRIPT_NAME")


def _wsgi_text(value):
    """A WSGI string as werkzeug decodes it (``werkzeug._internal._wsgi_decoding_dance``)."""
    return value.encode("latin1").decode(errors="replace")


class _WsgiApp(WsgiApp):
    """nameko's WSGI app, logging the requests no entrypoint takes (no route, wrong method):
    a request an entrypoint takes gets its line from ``runtime.ops.Instrumentation``.

    werkzeug binds the URL map to every request (``bind_to_environ``: the host, the scheme,
    the script's root, then a new adapter), which cost more than matching the path. Here
    the adapter of the last binding is kept, and a request that would bind the same way (the
    same ``_BINDING`` values: every request of a client that keeps its ``Host``) is matched
    on it, with its own path, method and query: what ``bind_to_environ(environ).match()``
    would answer, redirects and refusals included."""

    _binding = None  # (the _BINDING values, their adapter)

    def adapter(self, environ):
        key = tuple(environ.get(name) for name in _BINDING)
        binding = self._binding
        if binding is None or binding[0] != key:
            binding = self._binding = (key, self.url_map.bind_to_environ(environ))
        return binding[1]

    def match(self, environ):
        """``(entrypoint, path values)`` of the request, as
        ``self.url_map.bind_to_environ(environ).match()`` gives them (or raises)."""
        path, query = environ.get("PATH_INFO"), environ.get("QUERY_STRING")
        return self.adapter(environ).match(_wsgi_text(path) if path is not None else "/", environ["REQUEST_METHOD"],
                                          query_args=(_wsgi_text(query) if query is not None else None) or {})

    def __call__(self, environ, start_response):
        try:
            provider, values = self.match(environ)
        except HTTPException as exc:
            log.info("http refused", extra={"method": environ.get("REQUEST_METHOD"), "path": environ.get("PATH_INFO"),
                                            "status": exc.code})
            return exc(environ, start_response)
        request = Request(environ, shallow=True)
        request.path_values = values
        return provider.handle_request(request)(environ, start_response)


class ServiceWebServer(WebServer):
    def get_wsgi_app(self):
        return _WsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, **kwargs)
        # no access line from eventlet: with the entrypoint's line it made two per request,
        # and it wrote one for every health probe and metrics scrape too
        server.log_output = False
        return server

    def process_request(self, sock, address):
        # answers go out at once: without TCP_NODELAY a response written as headers then
        # body waits for the client's delayed ACK (~40 ms) before its last segment
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not a TCP socket
            pass
        return super().process_request(sock, address)

    @property
    def bind_addr(self):
        per_service = (config.get("WEB_SERVER_ADDRESSES") or {}).get(self.container.service_name)
        address = per_service or config.get("WEB_SERVER_ADDRESS") or "127.0.0.1:0"
        return parse_address(address)

    @property
    def port(self):
        return self._sock.getsockname()[1] if self._sock is not None else None


class ServiceHttpHandler(SignatureOnce, HttpRequestHandler):
    server = ServiceWebServer()

    def handle_result(self, event, worker_ctx, result, exc_info):
        event.send(result, exc_info)
        # let the request's thread write the response now: the worker's log line, metrics and
        # teardown then follow it instead of delaying it
        eventlet.sleep(0)
        return result, exc_info


http = ServiceHttpHandler.decorator


def bound_port(container):
    """The port a running container's web server listens on."""
    for ext in container.extensions:
        if isinstance(ext, ServiceWebServer):
            return ext.port
    return None
