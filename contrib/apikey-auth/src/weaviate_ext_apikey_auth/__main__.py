"""``python -m weaviate_ext_apikey_auth hash``: make an API key and its config entry.

    python -m weaviate_ext_apikey_auth hash --key-id ci-bot --role reader --role writer
    python -m weaviate_ext_apikey_auth hash --key-id ci-bot --stdin < existing-key.txt
    python -m weaviate_ext_apikey_auth hash --json

Without ``--stdin`` a new random key is made. The key is printed once (on stdout, or in
the JSON) together with the entry for the plugin's ``keys`` config; only the entry goes
into the configuration, the key goes to the client.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from argon2.exceptions import Argon2Error

from weaviate_ext_apikey_auth.keys import (
    DEFAULT_MEMORY_COST,
    DEFAULT_PARALLELISM,
    DEFAULT_TIME_COST,
    hash_key,
    new_key,
    split_key,
)


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand, ``hash``."""
    parser = argparse.ArgumentParser(
        prog="python -m weaviate_ext_apikey_auth",
        description="Make API keys for the argon2-apikey-auth weaviate-ext plugin.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser(
        "hash", help="make a key (or read one) and print its argon2 hash as a config entry"
    )
    make.add_argument("--key-id", help="the key id (default: random); 1-64 of A-Z a-z 0-9 _ -")
    make.add_argument(
        "--role", action="append", default=[], dest="roles", help="a role (repeatable)"
    )
    make.add_argument("--subject", help="the identity's subject (default: the key id)")
    make.add_argument(
        "--stdin",
        action="store_true",
        help="hash the key <key id>.<secret> read from standard input instead of a new one",
    )
    make.add_argument("--json", action="store_true", help="print one JSON object")
    make.add_argument("--time-cost", type=int, default=DEFAULT_TIME_COST)
    make.add_argument("--memory-cost", type=int, default=DEFAULT_MEMORY_COST, help="KiB")
    make.add_argument("--parallelism", type=int, default=DEFAULT_PARALLELISM)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 on success, 2 on a usage error (with a message on stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.stdin:
            key = sys.stdin.readline().strip()
            key_id, _ = split_key(key)
            if args.key_id is not None and args.key_id != key_id:
                raise ValueError(f"the key's id is {key_id!r}, not {args.key_id!r}")
        else:
            key = new_key(args.key_id)
            key_id, _ = split_key(key)
        encoded = hash_key(
            key,
            time_cost=args.time_cost,
            memory_cost=args.memory_cost,
            parallelism=args.parallelism,
        )
    except (ValueError, Argon2Error) as exc:
        parser.error(str(exc))
    entry: dict[str, object] = {"hash": encoded, "roles": args.roles}
    if args.subject:
        entry["subject"] = args.subject
    if args.json:
        print(json.dumps({"key_id": key_id, "key": key, "entry": {key_id: entry}}))
        return 0
    if not args.stdin:
        print("API key (shown once; give it to the client, keep it out of the config):")
        print(f"  {key}")
    print("Entry for the plugin's `keys` config (JSON, also valid YAML):")
    print(f"  {json.dumps({key_id: entry})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
