"""The network layer: every request the package makes, on maintained libraries.

Modules here import nothing from the rest of the package but :mod:`mlhub_widgets.exceptions`
and the version (see ``docs/architecture.md``):

* :mod:`.redact`: masks credentials in URLs, messages and log records;
* :mod:`.proxy`: ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` (suffixes, CIDRs) or a proxy setting;
* :mod:`.tls`: which CAs HTTPS trusts (system + certifi + ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``,
  or ``verify=``);
* :mod:`.retry`: the one retry policy (attempts, backoff with jitter, ``Retry-After``, budget);
* :mod:`.settings`: :class:`~.settings.NetworkSettings`, all of the above in one value;
* :mod:`.http`: the asynchronous HTTP client on aiohttp (credentials scoped per origin on every
  redirect hop, deadlines, size caps) used by the download engine;
* :mod:`.sync`: the same client for blocking callers (discovery, sources), on a background loop.
"""
