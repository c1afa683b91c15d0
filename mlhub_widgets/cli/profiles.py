"""``mlhub configure`` and ``mlhub profiles``: API keys in the profiles file."""

from __future__ import annotations

import argparse
import getpass
import sys

from ..config import profiles
from ..net.redact import mask_key
from .options import UsageError


def _cmd_configure(args: argparse.Namespace) -> int:
    path = profiles.profiles_path()
    name = args.profile or profiles.DEFAULT_PROFILE
    key = args.api_key
    if not key:
        if sys.stdin.isatty():
            key = getpass.getpass("API Key: ")
        else:
            key = sys.stdin.readline()
    key = (key or "").strip()
    if not key:
        raise UsageError("no API key given")
    existing = {p.name: p for p in profiles.list_profiles(path)}
    if name in existing and not args.force:
        old = mask_key(existing[name].api_key)
        if sys.stdin.isatty():
            answer = input(f"Overwrite existing API key {old} of profile '{name}'? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Aborted; profile unchanged.", file=sys.stderr)
                return 1
    written = profiles.save_profile(name, key, args.root_url, path)
    print(f"Wrote profile '{name}' to {written}")
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    path = profiles.profiles_path()
    found = profiles.list_profiles(path)
    if not found:
        print(f"No profiles in {path} (create one with: mlhub configure)")
        return 0
    width = max(len(p.name) for p in found)
    for p in found:
        root = p.root_url or "(default root URL)"
        print(f"{p.name:<{width}}  {mask_key(p.api_key)}  {root}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "configure",
        help="save an API key to a profile",
        description="Save an API key (and optionally a root URL) to a profile in "
        "$MLHUB_HOME/profiles (mode 0600). Without --api-key the key is read from a hidden "
        "prompt, or from the first line of standard input when it is not a terminal.",
    )
    p.add_argument("--profile", help="profile name (default: default)")
    p.add_argument("--api-key", help="the key (prefer the prompt: keeps it out of shell history)")
    p.add_argument("--root-url", help="API root URL to store with the profile")
    p.add_argument("--force", action="store_true", help="overwrite an existing key without asking")
    p.set_defaults(handler=_cmd_configure)

    p = sub.add_parser("profiles", help="list profiles with masked keys")
    p.set_defaults(handler=_cmd_profiles)
