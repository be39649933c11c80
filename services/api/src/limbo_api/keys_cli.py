"""``limbo-api-key NAME``: mint an API key, print it once and the line that stores its hash."""

from __future__ import annotations

import argparse
import sys

from .auth import NAME_PATTERN, hash_key, mint_key

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="limbo-api-key", description=__doc__)
    parser.add_argument("name", help="who the key is for; becomes the owner of its mail")
    args = parser.parse_args(argv)
    if not NAME_PATTERN.match(args.name):
        parser.error("NAME must be 1-64 of A-Z a-z 0-9 _ -")
    key = mint_key()
    print(f"API key for {args.name} (shown only now; limbo keeps only its hash):")
    print(f"  {key}")
    print("Store this line in API_KEYS_FILE (or API_KEYS, comma-separated):")
    print(f"  {args.name}={hash_key(key)}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
