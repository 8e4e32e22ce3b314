"""Helpers shared by the reference-data scripts (llamacpp-reference.py, make-arch-models.py,
gen-gemma-tokenize-fixture.py), imported from the scripts folder they run from."""
import hashlib


def sha256_of(path):
    """The hex sha256 of a file, read 1 MiB at a time (model files are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
