"""HTTP request headers read without the ``email`` package, when they are plain.

eventlet's HTTP server parses each request through the standard library
(``BaseHTTPRequestHandler.parse_request``), which reads the header lines with
``http.client.parse_headers`` and hands them to ``email.parser``: a general message
parser, built for mail, that costs about three times what the lines need (a gateway
request's six headers: 199,025 instructions against 71,529, ``python -m bench.instructions
http-headers``; bench/README.md, step 20). Every request of every service pays it before
its handler starts, the gateway's reads among them.

:func:`parse_headers` does the same for the headers every client sends, ``Name: value``
lines ending in a blank line, and gives back the same message: an
``http.client.HTTPMessage`` (or the class asked for) holding the same ``(name, value)``
pairs, payload and defects as ``email.parser`` would make of those lines. Anything else — a
folded continuation line, a line with no name before its colon, a leading ``From `` line,
headers cut off by the end of the stream — goes to the standard library's own parser,
unchanged. The limits on line length and number of headers, and their errors, are the
standard library's (``http.client._read_headers``). ``tests/unit/test_headers.py``
compares both parsers on such inputs, and on random ones.

``install()`` puts it in place of ``http.client.parse_headers``, where ``parse_request``
looks it up at every request (there is no hook for it on the handler class); every user
of ``http.client.parse_headers`` in the process then gets the same messages as before.
"""
import email.parser
import http.client
import re

_stdlib_parse_headers = http.client.parse_headers

#: a plain header line: a field name (printable ASCII, no colon or space), a colon, the
#: value, the line's end. email.parser reads the name the same way (its ``headerRE``).
_PLAIN_LINE = re.compile(rb"[!-9;-~]+:[^\r\n]*\r?\n\Z")
_BLANK = (b"\r\n", b"\n")


def parse_headers(fp, _class=http.client.HTTPMessage):
    """``http.client.parse_headers``: the header lines of ``fp``, parsed into ``_class``."""
    lines = http.client._read_headers(fp)
    if lines[-1] not in _BLANK or not all(_PLAIN_LINE.match(line) for line in lines[:-1]):
        return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
    message = _class()
    for line in lines[:-1]:
        name, _, value = line.decode("iso-8859-1").partition(":")
        # as email's compat32 policy keeps a header read from source (header_source_parse)
        message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    message.set_payload("")  # the parser's payload: what follows the blank line in the string, nothing
    return message


def install():
    """Read request headers with :func:`parse_headers` in this process (idempotent)."""
    http.client.parse_headers = parse_headers


__all__ = ["install", "parse_headers"]
