"""What every command group shares: connection options, the ``--source`` option, usage errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Bad arguments detected after parsing (exit status 2)."""


def parse_bbox_arg(text: str) -> list[float]:
    """``--bbox W,S,E,N`` as numbers (spaces allowed); the filters check the values.

    Raises:
        UsageError: an empty or non-numeric element (``1,,2,3`` is not quietly read as 3).
    """
    try:
        return [float(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        raise UsageError(f"--bbox must be W,S,E,N numbers, got {text!r}") from None


def print_error(message: str) -> None:
    """Print ``mlhub: error: message`` on stderr, always as one line."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    print(f"mlhub: error: {text or 'unknown error'}", file=sys.stderr, flush=True)


def describe_os_error(exc: OSError) -> str:
    """``Permission denied: /data/x`` for an ``OSError`` (no ``[Errno 13]``, both paths shown)."""
    if not exc.strerror:
        return str(exc) or type(exc).__name__
    if exc.filename is None:
        return str(exc.strerror)
    text = f"{exc.strerror}: {exc.filename}"
    if exc.filename2 is not None:
        text += f" -> {exc.filename2}"
    return text


def add_session_options(parser: argparse.ArgumentParser) -> None:
    """``--profile``, ``--api-key`` and ``--root-url`` for commands that talk to the API."""
    group = parser.add_argument_group("connection")
    group.add_argument("--profile", help="profile in the profiles file (default: MLHUB_PROFILE)")
    group.add_argument("--api-key", help="API key (default: MLHUB_API_KEY or the profile)")
    group.add_argument("--root-url", help="API root URL (default: MLHUB_ROOT_URL or profile)")


def add_source_option(parser: argparse.ArgumentParser) -> None:
    """``--source`` / ``--source-kind``: a STAC catalogue or STAC API instead of the MLHub API."""
    group = parser.add_argument_group("other STAC sources")
    group.add_argument(
        "--source",
        metavar="URL_OR_PATH",
        help="a static STAC catalogue (folder, catalog.json path or URL) or a STAC API URL "
        "instead of the MLHub API",
    )
    group.add_argument(
        "--source-kind",
        choices=("static", "stac-api", "mlhub"),
        help="what --source is (default: detected)",
    )
    add_storage_options(parser)


def add_storage_options(parser: argparse.ArgumentParser, *, output: bool = False) -> None:
    """``--storage-option``, ``--no-sign-request`` (and ``--output-storage-option``): object
    stores (``s3://``, ``gs://``, ``az://``) read from (and written to)."""
    group = parser.add_argument_group("object storage (s3://, gs://, az://)")
    group.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the object store read from (endpoint=https://data.source.coop, "
        "region=..., ...); repeat it for several",
    )
    group.add_argument(
        "--no-sign-request",
        action="store_true",
        help="read public buckets without credentials (AWS_NO_SIGN_REQUEST=YES)",
    )
    if output:
        group.add_argument(
            "--output-storage-option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an option of the object store written to (-o s3://...)",
        )


def storage_options(args: argparse.Namespace, name: str = "storage_option") -> dict[str, Any]:
    """The ``--storage-option KEY=VALUE`` pairs (and ``--no-sign-request``) as a dict."""
    from ..net.objects import parse_storage_option

    out: dict[str, Any] = dict(parse_storage_option(t) for t in getattr(args, name, None) or ())
    if name == "storage_option" and getattr(args, "no_sign_request", False):
        out["skip_signature"] = True
    return out


def source_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``{"source": Source}`` when ``--source`` was given, else ``{}``."""
    where = getattr(args, "source", None)
    if not where:
        return {}
    from ..sources import open_source

    return {
        "source": open_source(
            where,
            kind=getattr(args, "source_kind", None),
            storage_options=storage_options(args),
        )
    }


def session_kwargs(args: argparse.Namespace) -> dict[str, str | None]:
    """The ``get_session`` keyword arguments given on the command line."""
    return {
        "api_key": getattr(args, "api_key", None),
        "profile": getattr(args, "profile", None),
        "root_url": getattr(args, "root_url", None),
    }
