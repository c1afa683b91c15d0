"""The hub's service description: an OpenAPI 3.0 document and an HTML page rendered from it.

``{hub.url}openapi.json`` (``rel="service-desc"``, ``application/vnd.oai.openapi+json;
version=3.0``) describes every endpoint the API origin serves: the STAC API (landing page,
conformance, collections, items, item search with its fields/sort/query extensions) and the MLHub
endpoints (datasets, models, catalogue and archive downloads). ``{hub.url}api.html``
(``rel="service-doc"``) is the same document as a plain HTML page, without scripts.

The document is written against the placeholder API root; the hub rewrites it to its own URL.
"""

from __future__ import annotations

import html
from typing import Any

from .._version import __version__
from .search import DEFAULT_LIMIT, MAX_LIMIT
from .store import API_PLACEHOLDER

__all__ = ["OPENAPI_TYPE", "openapi_document", "service_doc_html"]

JSON = dict[str, Any]

OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"
GEOJSON = "application/geo+json"
#: Operations that need the key when the hub is started with one (optional otherwise).
_KEYED: list[JSON] = [{}, {"apiKey": []}, {"bearer": []}]


def _ref(kind: str, name: str) -> JSON:
    return {"$ref": f"#/components/{kind}/{name}"}


def _content(media: str, schema: str) -> JSON:
    return {media: {"schema": _ref("schemas", schema)}}


def _ok(description: str, media: str = "application/json", schema: str = "Object") -> JSON:
    return {"description": description, "content": _content(media, schema)}


_ERRORS: JSON = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "404": {"$ref": "#/components/responses/NotFound"},
}
_AUTH: JSON = {"401": {"$ref": "#/components/responses/Unauthorized"}}


def _get(
    op_id: str,
    summary: str,
    ok: JSON,
    *,
    params: tuple[str, ...] = (),
    errors: tuple[str, ...] = ("404",),
    keyed: bool = False,
    description: str = "",
) -> JSON:
    op: JSON = {
        "operationId": op_id,
        "summary": summary,
        "parameters": [_ref("parameters", p) for p in params],
        "responses": {"200": ok, **{code: _ERRORS[code] for code in errors}},
    }
    if description:
        op["description"] = description
    if keyed:
        op["security"] = _KEYED
        op["responses"].update(_AUTH)
    return op


def _redirect(op_id: str, summary: str, param: str) -> JSON:
    op = _get(op_id, summary, {"description": "unused"}, params=(param,), keyed=True)
    del op["responses"]["200"]
    op["responses"]["303"] = {
        "description": "Redirect to the file on the storage origin",
        "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
    }
    return op


def _parameters() -> JSON:
    def query(name: str, description: str, schema: JSON, **extra: Any) -> JSON:
        return {"name": name, "in": "query", "description": description, "schema": schema, **extra}

    def path(name: str, description: str) -> JSON:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": {"type": "string"},
        }

    names = {"type": "array", "items": {"type": "string"}}
    return {
        "collectionId": path("collectionId", "A collection id (see /collections)."),
        "itemId": path("itemId", "An item id within the collection."),
        "datasetId": path("datasetId", "A dataset id (see /datasets)."),
        "modelId": path("modelId", "A model id (see /models)."),
        "doi": path("doi", "A dataset DOI, slashes included (e.g. 10.6084/m9.figshare.1)."),
        "bbox": query(
            "bbox",
            "west,south,east,north (or 6 numbers with heights), WGS 84; west > east crosses "
            "the antimeridian in /search.",
            {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
            style="form",
            explode=False,
        ),
        "datetime": query(
            "datetime",
            "An RFC 3339 date-time, or an interval a/b with one open end given as .. or empty.",
            {"type": "string"},
        ),
        "limit": query(
            "limit",
            f"Items per page, at least 1; more than {MAX_LIMIT} is served as {MAX_LIMIT}.",
            {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT},
        ),
        "token": query("token", "Paging token of a next or previous link.", {"type": "string"}),
        "ids": query("ids", "Item ids.", names, style="form", explode=False),
        "collections": query("collections", "Collection ids.", names, style="form", explode=False),
        "intersects": query(
            "intersects", "A GeoJSON geometry as JSON text (not with bbox).", {"type": "string"}
        ),
        "fields": query(
            "fields",
            "Fields extension: comma-separated field names; - excludes, no prefix or + includes; "
            "empty: the default set.",
            {"type": "string"},
        ),
        "sortby": query(
            "sortby",
            "Sort extension: comma-separated id, collection or properties.<name>, each "
            "prefixed with + (ascending, the default) or - (descending).",
            {"type": "string"},
        ),
        "query": query(
            "query",
            'Query extension: JSON {"<property>": {"<op>": value}}; ops eq, neq, lt, lte, gt, '
            "gte, startsWith, endsWith, contains, in.",
            {"type": "string"},
        ),
        "tags": query("tags", "Only datasets with every one of these tags.", names, explode=True),
        "text": query(
            "text", "Only datasets whose text mentions any of these phrases.", names, explode=True
        ),
    }


def _schemas() -> JSON:
    obj: JSON = {"type": "object"}
    string_list = {"type": "array", "items": {"type": "string"}}
    return {
        "Object": {**obj, "description": "A JSON object (see the endpoint's summary)."},
        "Array": {"type": "array", "items": obj},
        "Exception": {
            **obj,
            "required": ["code", "description"],
            "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
        },
        "Detail": {**obj, "required": ["detail"], "properties": {"detail": {"type": "string"}}},
        "Link": {
            **obj,
            "required": ["rel", "href"],
            "properties": {
                "rel": {"type": "string"},
                "href": {"type": "string"},
                "type": {"type": "string"},
                "method": {"type": "string"},
                "body": obj,
            },
        },
        "LandingPage": {
            **obj,
            "required": ["id", "description", "links", "conformsTo"],
            "properties": {
                "id": {"type": "string"},
                "description": {"type": "string"},
                "conformsTo": string_list,
                "links": {"type": "array", "items": _ref("schemas", "Link")},
            },
        },
        "Conformance": {
            **obj,
            "required": ["conformsTo"],
            "properties": {"conformsTo": string_list},
        },
        "Collections": {
            **obj,
            "required": ["collections", "links"],
            "properties": {
                "collections": {"type": "array", "items": _ref("schemas", "Collection")},
                "links": {"type": "array", "items": _ref("schemas", "Link")},
            },
        },
        "Collection": {
            **obj,
            "description": "A STAC Collection.",
            "required": ["type", "id", "links"],
            "properties": {"type": {"type": "string"}, "id": {"type": "string"}},
        },
        "Item": {
            **obj,
            "description": "A STAC Item (a GeoJSON Feature).",
            "required": ["type", "id"],
            "properties": {"type": {"type": "string", "enum": ["Feature"]}},
        },
        "ItemCollection": {
            **obj,
            "description": "A GeoJSON FeatureCollection of STAC Items with paging links.",
            "required": ["type", "features", "links"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": _ref("schemas", "Item")},
                "links": {"type": "array", "items": _ref("schemas", "Link")},
                "numberMatched": {"type": "integer"},
                "numberReturned": {"type": "integer"},
            },
        },
        "SearchBody": {
            **obj,
            "properties": {
                "collections": string_list,
                "ids": string_list,
                "bbox": {
                    "type": "array",
                    "minItems": 4,
                    "maxItems": 6,
                    "items": {"type": "number"},
                },
                "intersects": {**obj, "description": "A GeoJSON geometry."},
                "datetime": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1},
                "token": {"type": "string"},
                "fields": {
                    **obj,
                    "nullable": True,
                    "properties": {
                        "include": {**string_list, "nullable": True},
                        "exclude": {**string_list, "nullable": True},
                    },
                },
                "sortby": {
                    "type": "array",
                    "items": {
                        **obj,
                        "required": ["field"],
                        "properties": {
                            "field": {"type": "string"},
                            "direction": {"type": "string", "enum": ["asc", "desc"]},
                        },
                    },
                },
                "query": {
                    **obj,
                    "additionalProperties": {**obj, "description": "{operator: value}"},
                },
            },
        },
    }


def openapi_document() -> JSON:
    """The OpenAPI 3.0 description of the API origin (placeholder root URL)."""
    item_collection = _ok("A page of items", GEOJSON, "ItemCollection")
    search_params = (
        "collections",
        "ids",
        "bbox",
        "intersects",
        "datetime",
        "limit",
        "token",
        "fields",
        "sortby",
        "query",
    )
    search_doc = (
        "STAC API Item Search over every collection, with the fields, sort and query "
        "extensions. bbox and intersects exclude each other; CQL2 filter is not supported."
    )
    post_search = _get(
        "postSearch",
        "Search items (JSON body)",
        item_collection,
        errors=("400",),
        keyed=True,
        description=search_doc,
    )
    post_search["requestBody"] = {
        "required": False,
        "content": _content("application/json", "SearchBody"),
    }
    paths: JSON = {
        "/": {
            "get": _get(
                "getLandingPage",
                "Landing page",
                _ok("Landing page", schema="LandingPage"),
                errors=(),
            )
        },
        "/conformance": {
            "get": _get(
                "getConformance",
                "Conformance classes",
                _ok("Conformance classes", schema="Conformance"),
                errors=(),
            )
        },
        "/openapi.json": {
            "get": _get("getOpenAPI", "This document", _ok("OpenAPI 3.0", OPENAPI_TYPE), errors=())
        },
        "/api.html": {
            "get": _get(
                "getServiceDoc",
                "This document as an HTML page",
                {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                errors=(),
            )
        },
        "/collections": {
            "get": _get(
                "getCollections",
                "All collections",
                _ok("Collections", schema="Collections"),
                errors=(),
            )
        },
        "/collections/{collectionId}": {
            "get": _get(
                "describeCollection",
                "One collection",
                _ok("A STAC Collection", schema="Collection"),
                params=("collectionId",),
            )
        },
        "/collections/{collectionId}/items": {
            "get": _get(
                "getFeatures",
                "Items of a collection (paged)",
                item_collection,
                params=("collectionId", "limit", "bbox", "datetime", "token"),
                errors=("400", "404"),
                keyed=True,
            )
        },
        "/collections/{collectionId}/items/{itemId}": {
            "get": _get(
                "getFeature",
                "One item",
                _ok("A STAC Item", GEOJSON, "Item"),
                params=("collectionId", "itemId"),
                keyed=True,
            )
        },
        "/search": {
            "get": _get(
                "getSearch",
                "Search items",
                item_collection,
                params=search_params,
                errors=("400",),
                keyed=True,
                description=search_doc,
            ),
            "post": post_search,
        },
        "/datasets": {
            "get": _get(
                "getDatasets",
                "MLHub dataset records (a JSON array)",
                _ok("Dataset records", schema="Array"),
                params=("tags", "text"),
                errors=(),
            )
        },
        "/datasets/{datasetId}": {
            "get": _get(
                "getDataset", "One MLHub dataset record", _ok("Dataset"), params=("datasetId",)
            )
        },
        "/datasets/doi/{doi}": {
            "get": _get(
                "getDatasetByDoi", "The dataset with a DOI", _ok("Dataset"), params=("doi",)
            )
        },
        "/models": {
            "get": _get(
                "getModels",
                "ML model items (a JSON array)",
                _ok("Models", schema="Array"),
                errors=(),
            )
        },
        "/models/{modelId}": {
            "get": _get("getModel", "One ML model item", _ok("Model"), params=("modelId",))
        },
        "/catalog/{datasetId}": {
            "get": _redirect(
                "getCatalog", "Download the dataset's STAC catalogue tarball", "datasetId"
            )
        },
        "/catalog/{datasetId}/info": {
            "get": _get(
                "getCatalogInfo",
                "Catalogue tarball and dataset sizes",
                _ok("Sizes"),
                params=("datasetId",),
                keyed=True,
            )
        },
        "/archive/{collectionId}": {
            "get": _redirect("getArchive", "Download a collection archive", "collectionId")
        },
        "/archive/{collectionId}/info": {
            "get": _get(
                "getArchiveInfo",
                "Size and types of a collection archive",
                _ok("Archive information"),
                params=("collectionId",),
                keyed=True,
            )
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "mlhub_widgets bundled hub",
            "version": __version__,
            "description": (
                "An MLHub-compatible API and STAC API (core, collections, OGC API - Features, "
                "item search with fields, sort and query) served by mlhub_widgets from recorded "
                "and generated data."
            ),
        },
        "servers": [{"url": API_PLACEHOLDER}],
        "paths": paths,
        "components": {
            "parameters": _parameters(),
            "schemas": _schemas(),
            "responses": {
                "BadRequest": {
                    "description": "A parameter is malformed",
                    "content": _content("application/json", "Exception"),
                },
                "NotFound": {
                    "description": "No such resource",
                    "content": _content("application/json", "Detail"),
                },
                "Unauthorized": {
                    "description": "The hub requires an API key",
                    "content": _content("application/json", "Detail"),
                },
            },
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "query", "name": "key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def service_doc_html(doc: JSON) -> str:
    """An HTML page listing every operation of ``doc`` with its parameters and responses."""
    esc = html.escape
    params = doc["components"]["parameters"]
    rows: list[str] = []
    for route, ops in doc["paths"].items():
        for method, op in ops.items():
            plist = [params[p["$ref"].rsplit("/", 1)[1]] for p in op.get("parameters", [])]
            items = "".join(
                f"<li><code>{esc(p['name'])}</code> ({esc(p['in'])}): {esc(p['description'])}</li>"
                for p in plist
            )
            if "requestBody" in op:
                items += "<li>JSON body: the same parameters as an object</li>"
            codes = ", ".join(esc(code) for code in op["responses"])
            rows.append(
                f'<section id="{esc(op["operationId"])}"><h2><code>{esc(method.upper())} '
                f"{esc(route)}</code></h2><p>{esc(op['summary'])}. "
                f"{esc(op.get('description', ''))}</p>"
                + (f"<ul>{items}</ul>" if items else "")
                + f"<p>Responses: {codes}</p></section>"
            )
    server = esc(doc["servers"][0]["url"])
    info = doc["info"]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(info['title'])}</title></head><body>"
        f"<h1>{esc(info['title'])} {esc(info['version'])}</h1><p>{esc(info['description'])}</p>"
        f"<p>Base URL: <code>{server}</code>. Machine-readable: "
        f'<a href="{server}openapi.json">openapi.json</a>.</p>' + "".join(rows) + "</body></html>"
    )
