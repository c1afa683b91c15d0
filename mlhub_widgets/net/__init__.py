"""The network layer: the HTTP/1.1 client of the transfer engine, retry timing, redaction.

Modules here import nothing from the rest of the package but :mod:`mlhub_widgets.exceptions`
(see ``docs/architecture.md``):

* :mod:`.redact`: masks API keys in URLs, messages and log records;
* :mod:`.retry`: backoff with jitter and ``Retry-After`` parsing, shared by every client;
* :mod:`.http11`: the asyncio HTTP/1.1 connection pools of the transfer engine.
"""
