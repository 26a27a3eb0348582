"""A quick check that a download host can be reached, before a library retries for minutes.

tfds and HF ``datasets`` retry an unreachable host for minutes before they give
up. `unreachable_reason` opens one TCP connection to the host (or to the proxy
the environment names for it: ``https_proxy``, ``all_proxy``, ``no_proxy``, as
``requests`` and ``urllib`` read them) within a few seconds, so a loader can
fail at once with a message that says how to use local files instead.
"""

import socket
import threading
import urllib.parse
import urllib.request

PROBE_TIMEOUT_SECONDS = 3.0


def connection_target(url):
    """The ``(host, port)`` a download of ``url`` connects to first: its proxy's when one applies, else its own.

    Example:
    >>> connection_target("https://huggingface.co/datasets")
    ('huggingface.co', 443)
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        default_port = 443 if proxy_parts.scheme == "https" else 1080 if proxy_parts.scheme.startswith("socks") else 80
        return proxy_parts.hostname, proxy_parts.port or default_port
    return host, port


def unreachable_reason(url, timeout=PROBE_TIMEOUT_SECONDS):
    """None when a TCP connection to ``url``'s host (or its proxy) opens within ``timeout`` seconds, else why not.

    Name resolution counts in the time (it runs in a helper thread, since
    ``getaddrinfo`` takes no timeout). Nothing is sent over the connection.

    Args:
        url: str. An http(s) URL.
        timeout: float. Seconds to wait in all.

    Returns:
        None, or a short str such as ``"huggingface.co:443: Name or service not known"``.

    Example:
    >>> unreachable_reason("http://127.0.0.1:9/", timeout=1.0)  # the discard port, closed here  # doctest: +SKIP
    '127.0.0.1:9: Connection refused'
    """
    host, port = connection_target(url)
    result = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as error:
            result.append(error.strerror or str(error) or type(error).__name__)

    thread = threading.Thread(target=connect, name=f"probe {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        return f"{host}:{port}: no answer within {timeout:g} s"
    return None if result[0] is None else f"{host}:{port}: {result[0]}"
