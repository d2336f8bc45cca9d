"""nameko's HTTP entrypoint, bound per service.

nameko reads one ``WEB_SERVER_ADDRESS`` for every container in a process. Here a
process that runs several services (tests, benchmarks) can give each its own address
with ``WEB_SERVER_ADDRESSES: {service: "host:port"}``; with no address configured at
all the server binds an ephemeral port on loopback instead of clashing on :8000.
"""
import socket

from nameko import config
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, parse_address


class ServiceWebServer(WebServer):
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


class ServiceHttpHandler(HttpRequestHandler):
    server = ServiceWebServer()


http = ServiceHttpHandler.decorator


def bound_port(container):
    """The port a running container's web server listens on."""
    for ext in container.extensions:
        if isinstance(ext, ServiceWebServer):
            return ext.port
    return None
