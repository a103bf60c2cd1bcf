"""HTTPS to a dbt Cloud with a private CA: trusted through REQUESTS_CA_BUNDLE, refused without it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator import LocalDbtCloud
from tests.runner import run_action


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]) -> Iterator[LocalDbtCloud]:
    with LocalDbtCloud(root=tmp_path_factory.mktemp("cloud"), tls=certificate) as emulator:
        yield emulator


def test_https_with_a_trusted_private_ca(cloud: LocalDbtCloud, certificate: tuple[Path, Path], tmp_path: Path) -> None:
    assert cloud.base_url.startswith("https://127.0.0.1:")
    job_id = cloud.add_job(["dbt seed"])
    cloud.set_faults(["raw_payments"])
    run_id = cloud.trigger(job_id)
    cloud.wait(run_id)
    cloud.set_faults([])
    values = {
        "dbt-cloud-token": cloud.token,
        "account-id": str(cloud.account_id),
        "job-id": str(job_id),
        "dbt-cloud-host": cloud.base_url,
        "dry-run": "true",
    }

    trusted = run_action(tmp_path, values, env={"REQUESTS_CA_BUNDLE": str(certificate[0])})
    untrusted = run_action(tmp_path, values)

    assert trusted.exit_code == 0, trusted.log
    assert trusted.json_output("steps") == ["dbt seed --select file:raw_payments,resource_type:seed,package:shop"]
    assert untrusted.exit_code == 1
    [error] = untrusted.errors()
    assert "TLS handshake with https://127.0.0.1" in error and "check dbt-cloud-host" in error
