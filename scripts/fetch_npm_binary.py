#!/usr/bin/env python3
"""Fetches one file of a pinned npm package straight from the npm registry, without Node.js.

Claude Code ships as a native binary in a per-platform package
(`@anthropic-ai/claude-code-linux-x64`, …); `npm install` only copies that binary into place.
This does the same with Python's standard library, so `make test` needs only the Rust
toolchain, Python 3 and git: the registry's metadata names the tarball and its sha512
integrity, the tarball is checked against it, and the one file is extracted.

Usage: fetch_npm_binary.py PACKAGE VERSION FILE_IN_PACKAGE DEST
Registry: $NPM_CONFIG_REGISTRY, else https://registry.npmjs.org/.
"""

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.parse
import urllib.request


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    package, version, member, dest = sys.argv[1:]
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/").rstrip("/")
    meta_url = f"{registry}/{urllib.parse.quote(package, safe='@')}/{version}"
    with urllib.request.urlopen(meta_url, timeout=120) as r:
        meta = json.load(r)
    dist = meta["dist"]
    algo, _, want = dist["integrity"].partition("-")
    if algo != "sha512":
        sys.exit(f"{package}@{version}: unexpected integrity algorithm {algo}")
    with urllib.request.urlopen(dist["tarball"], timeout=600) as r:
        data = r.read()
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != want:
        sys.exit(f"{package}@{version}: tarball integrity mismatch")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        src = tar.extractfile(f"package/{member}")
        if src is None:
            sys.exit(f"{package}@{version}: no {member} in the package")
        tmp = dest + ".part"
        with open(tmp, "wb") as out:
            out.write(src.read())
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    print(f"{package}@{version}: {member} -> {dest} ({len(data)} bytes fetched, sha512 verified)", file=sys.stderr)


if __name__ == "__main__":
    main()
