"""A throwaway PKI for TLS tests, made with the openssl command line."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # a client certificate from another CA
    rogue_key: Path
    other_cert: Path  # a good certificate, for another station (CN=CP_2)
    other_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def _signed(folder: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    ext = folder / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def make_pki(folder: Path) -> Pki:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (apt-get install openssl)")
    ca = _ca(folder, "test-ca")
    server = _signed(folder, "localhost", ca, "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    client = _signed(folder, "CP_1", ca, "extendedKeyUsage=clientAuth\n")
    rogue_ca = _ca(folder, "rogue-ca")
    rogue = _signed(folder, "rogue", rogue_ca, "extendedKeyUsage=clientAuth\n")
    other = _signed(folder, "CP_2", ca, "extendedKeyUsage=clientAuth\n")
    return Pki(
        ca[0], server[0], server[1], client[0], client[1], rogue[0], rogue[1], other[0], other[1]
    )
