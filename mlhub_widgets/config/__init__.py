"""Configuration: profiles (API keys and root URLs on disk) and the API session built from them.

* :mod:`.profiles`: the radiant_mlhub-compatible INI profiles file (``$MLHUB_HOME/profiles``);
* :mod:`.session`: :class:`~.session.Session` and :func:`~.session.get_session`, which resolve the
  key and root URL from arguments, the environment and the profiles.
"""
