"""TLS: certificates are verified by default, against the simulator served over HTTPS.

The test creates a private CA and a server certificate for 127.0.0.1 that the CA signed.
The client must reject it by default, accept it with validate_certs: false, and accept it
with the CA in REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.conftest import DEMO_FIXTURE
from tests.integration.reliability_support import BOREALIS

PARTNER_TOKEN = "demo-partner-token"


def write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Write a CA certificate and a server certificate and key for 127.0.0.1 (PEM files)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ucops.webex test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
            ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    ca_file = directory / "ca.pem"
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return ca_file, cert_file, key_file


def info_task(simulator, title: str, **options) -> dict:
    args = {"api_url": simulator.api_url, "access_token": PARTNER_TOKEN,
            "org_id": BOREALIS["id"], "max_retry_wait": 5}
    args.update(options)
    return {"name": title, "ucops.webex.webex_license_info": args, "ignore_errors": True}


def test_https_certificate_validation(start_simulator, run_playbook, tmp_path):
    ca_file, cert_file, key_file = write_certificates(tmp_path)
    simulator = start_simulator(DEMO_FIXTURE, "--tls-cert", str(cert_file),
                                "--tls-key", str(key_file))
    assert simulator.api_url.startswith("https://127.0.0.1:")
    expected_licenses = len(BOREALIS["licenses"])

    run = run_playbook([
        info_task(simulator, "default"),
        info_task(simulator, "not validated", validate_certs=False),
    ])

    record = run.task("default")
    assert record["failed"], record["result"]
    message = record["result"]["msg"]
    assert f"TLS certificate verification failed for {simulator.api_url}" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert "REQUESTS_CA_BUNDLE" in message
    assert "validate_certs" in message
    record = run.task("not validated")
    assert not record["failed"], record["result"].get("msg")
    assert len(record["result"]["licenses"]) == expected_licenses

    trusted = run_playbook([info_task(simulator, "CA bundle")],
                           extra_env={"REQUESTS_CA_BUNDLE": str(ca_file)})

    record = trusted.task("CA bundle")
    assert not record["failed"], record["result"].get("msg")
    assert len(record["result"]["licenses"]) == expected_licenses
