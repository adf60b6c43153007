"""NGINX's client_max_body_size in front of Workhorse: refuse big bodies before Rails sees them."""

from workhorse.httpio import Message, Receive

NGINX_413_BODY = (
    b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
    b"<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class ClientBodyTooLarge(Exception):
    """The client sent more than client_max_body_size (NGINX's 413, not Rails' MaximumSize)."""

    def __init__(self, limit: int, seen: int) -> None:
        super().__init__(f"client intended to send too large body: {seen} bytes, limit {limit}")


def declared_too_large(headers: dict[str, str], limit: int) -> int | None:
    """The declared Content-Length when it is over ``limit`` (checked before reading a byte)."""
    if not limit:
        return None
    try:
        length = int(headers.get("content-length", ""))
    except ValueError:
        return None
    return length if length > limit else None


def limited_receive(receive: Receive, limit: int) -> Receive:
    """Wrap ``receive`` so a chunked body is counted and cut off once over ``limit``."""
    if not limit:
        return receive
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise ClientBodyTooLarge(limit, seen)
        return message

    return wrapped
