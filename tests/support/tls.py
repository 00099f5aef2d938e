"""A throwaway certificate authority for tests that run brokers with TLS listeners (the
`cryptography` package; keys are ECDSA P-256, as cert-manager issues Burrow's)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA; `server` issues certificates for DNS names. `ca_file` is what a client trusts: this
    CA's certificate, or for an intermediate (`parent`) its root's. A server certificate file holds
    the intermediate after the leaf, as cert-manager's `tls.crt` does."""

    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    ca_file: Path
    #: The CA certificates a server sends after its own (an intermediate's own certificate).
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def create(cls, folder: Path, name: str, permitted: tuple[str, ...] = (),
               parent: CertificateAuthority | None = None) -> CertificateAuthority:
        """A CA named `name`, self-signed or signed by `parent`; with `permitted`, critical X.509
        name constraints limit it to those DNS domains, as Burrow's federation CA is limited
        (`FederationCa.permitted_domains`)."""
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(subject)
            .issuer_name(parent.certificate.subject if parent else subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - DAY).not_valid_after(now + DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        )
        if permitted:  # and no IP address at all, as Burrow's CA
            certificate = certificate.add_extension(x509.NameConstraints(
                permitted_subtrees=[x509.DNSName(domain) for domain in permitted],
                excluded_subtrees=[x509.IPAddress(ipaddress.ip_network(n)) for n in ("0.0.0.0/0", "::/0")]),
                critical=True)
        certificate = certificate.sign(parent.key if parent else key, hashes.SHA256())
        if parent is not None:
            return cls(name, key, certificate, parent.ca_file, (certificate, *parent.chain))
        ca_file = folder / f"{name}-ca.pem"
        ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(name, key, certificate, ca_file)

    def server(self, folder: Path, names: list[str]) -> tuple[Path, Path]:
        """(certificate file, key file) of a server certificate for `names` (the first is its CN)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - DAY).not_valid_after(now + DAY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = folder / f"{names[0]}.pem", folder / f"{names[0]}-key.pem"
        cert_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (certificate, *self.chain)))
        key_file.write_bytes(_pem_key(key))
        key_file.chmod(0o600)
        return cert_file, key_file

    def listener_config(self, folder: Path, names: list[str], port: int) -> str:
        """rabbitmq.conf lines for a TLS listener on 127.0.0.1:`port` serving a certificate for
        `names`, as the Bitnami chart configures Burrow's brokers (a client certificate is asked
        for, verified when given, not required)."""
        cert_file, key_file = self.server(folder, names)
        return (f"listeners.ssl.default = 127.0.0.1:{port}\n"
                f"ssl_options.cacertfile = {self.ca_file}\n"
                f"ssl_options.certfile = {cert_file}\n"
                f"ssl_options.keyfile = {key_file}\n"
                "ssl_options.verify = verify_peer\n"
                "ssl_options.fail_if_no_peer_cert = false\n")
