"""runtime.headers reads plain request headers into the very message the standard
library's email parser makes of them, and leaves everything else to that parser."""
import http.client
import io
import random

import pytest

from runtime import headers


def both(raw):
    ours = headers.parse_headers(io.BytesIO(raw))
    stdlib = headers._stdlib_parse_headers(io.BytesIO(raw))
    return ours, stdlib


def same(ours, stdlib):
    assert type(ours) is type(stdlib)
    assert {k: v for k, v in vars(ours).items() if k != "defects"} == \
        {k: v for k, v in vars(stdlib).items() if k != "defects"}
    assert [type(d) for d in ours.defects] == [type(d) for d in stdlib.defects]


CASES = [
    b"Host: 127.0.0.1:8001\r\nUser-Agent: wrk\r\nAccept: */*\r\nAuthorization: Bearer abc.def\r\n\r\n",
    b"\r\n",  # no headers at all
    b"Host: a\n\n",  # bare line feeds
    b"X-Empty:\r\nX-Spaces:   \t value with  inner  spaces  \r\n\r\n",
    b"Accept: a\r\naccept: b\r\nACCEPT: c\r\n\r\n",  # repeated, any case
    b"X-Latin: caf\xe9 \xff\r\n\r\n",  # bytes beyond ASCII (ISO-8859-1)
    b"X-Colons: a:b:c\r\nX-Tab:\tv\r\n\r\n",
    # left to the standard library's parser:
    b"X-Folded: first\r\n  second\r\n\r\n",  # a continuation line
    b": no name\r\nHost: a\r\n\r\n",  # a colon with no name before it
    b"No colon here\r\nHost: a\r\n\r\n",
    b"From someone\r\nHost: a\r\n\r\n",
    b"Bad Name: v\r\n\r\n",  # a space in the name
    b"Host: a\r\n",  # cut off: no blank line before the end
    b"",
]


@pytest.mark.parametrize("raw", CASES)
def test_same_message_as_the_standard_library(raw):
    ours, stdlib = both(raw)
    same(ours, stdlib)
    assert ours.get("host") == stdlib.get("host")
    assert ours.items() == stdlib.items()
    assert ours.get_content_type() == stdlib.get_content_type()


def test_plain_headers_skip_the_email_parser(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("email parser used for plain headers")

    monkeypatch.setattr(headers.email.parser, "Parser", refuse)
    message = headers.parse_headers(io.BytesIO(CASES[0]))
    assert message["authorization"] == "Bearer abc.def"
    with pytest.raises(AssertionError):  # a folded line still goes to the parser
        headers.parse_headers(io.BytesIO(b"X-Folded: first\r\n  second\r\n\r\n"))


def test_only_the_header_lines_are_read():
    fp = io.BytesIO(b"Content-Length: 4\r\n\r\nbody")
    assert headers.parse_headers(fp)["content-length"] == "4"
    assert fp.read() == b"body"


def test_the_standard_library_limits_hold():
    with pytest.raises(http.client.LineTooLong):
        headers.parse_headers(io.BytesIO(b"X-Long: " + b"a" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        headers.parse_headers(io.BytesIO(b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n"))


def test_random_header_blocks_parse_alike():
    rng = random.Random(20)
    alphabet = [b"a", b"Z", b"-", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\xe9", b"!", b"~", b"From "]
    for _ in range(3000):
        lines = []
        for _ in range(rng.randint(0, 6)):
            if rng.random() < 0.8:
                lines.append(b"X-" + bytes(rng.choice(b"abcXYZ-") for _ in range(rng.randint(1, 8))) + b":"
                             + b"".join(rng.choice(alphabet[:8]) if rng.random() < 0.2 else b"v"
                                        for _ in range(rng.randint(0, 10))) + b"\r\n")
            else:
                lines.append(b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) + b"\r\n")
        raw = b"".join(lines) + rng.choice([b"\r\n", b"\n", b""])
        ours, stdlib = both(raw)
        same(ours, stdlib)


def test_installed_where_the_http_server_looks():
    import runtime.web  # noqa: F401 - installs it
    assert http.client.parse_headers is headers.parse_headers
