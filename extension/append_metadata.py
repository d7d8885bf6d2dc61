#!/usr/bin/env python3
"""Turn a built cdylib into a loadable DuckDB extension file.

DuckDB reads the last 512 bytes of an extension file: eight NUL-padded
32-byte fields (in file order: three unused, ABI type, extension version,
minimum C API version, platform, magic "4"), then 256 signature bytes (all
zero: the extension is unsigned, so hosts load it with -unsigned /
allow_unsigned_extensions). The file name decides the entry symbol
(<name>_init_c_api), so the output must be called ecoreco.duckdb_extension.

usage: append_metadata.py LIBRARY OUTPUT --extension-version V --c-api V --platform P
"""
import argparse
import os
import shutil
import sys

FIELD = 32


def field(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > FIELD:
        sys.exit(f"metadata field too long: {text!r}")
    return raw.ljust(FIELD, b"\0")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("library")
    ap.add_argument("output")
    ap.add_argument("--extension-version", required=True)
    ap.add_argument("--c-api", required=True, help="minimum C API version, e.g. v1.2.0")
    ap.add_argument("--platform", default="linux_amd64")
    args = ap.parse_args()
    if not args.output.endswith("ecoreco.duckdb_extension"):
        sys.exit("the output must be named ecoreco.duckdb_extension: DuckDB derives the entry symbol from it")
    # Written beside the target and renamed over it: a DuckDB process that
    # has the old file loaded keeps its (unlinked) copy instead of seeing it
    # truncated under its feet.
    partial = args.output + ".partial"
    shutil.copyfile(args.library, partial)
    footer = b"".join(
        [
            field(""),
            field(""),
            field(""),
            field("C_STRUCT"),
            field(args.extension_version),
            field(args.c_api),
            field(args.platform),
            field("4"),
        ]
    ) + b"\0" * 256
    assert len(footer) == 512
    with open(partial, "ab") as out:
        out.write(footer)
    os.replace(partial, args.output)


if __name__ == "__main__":
    main()
