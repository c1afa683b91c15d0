"""The Radiant MLHub API: plain functions and the objects a radiant_mlhub user knows.

* :mod:`.client`: the API as functions returning JSON (``list_datasets``, ``get_collection``,
  ``list_collection_items``...); sources and discovery build on it. Its radiant_mlhub-compatible
  public face is :mod:`mlhub_widgets.client`.
* :mod:`.dataset`, :mod:`.collection`, :mod:`.ml_model`: :class:`Dataset`, :class:`Collection` and
  :class:`MLModel` (exported at the top level: ``from mlhub_widgets import Dataset``). They sit
  above discovery and the download engine, which their methods call.
"""
