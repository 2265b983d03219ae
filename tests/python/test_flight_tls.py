"""Arrow Flight SQL over TLS. With --flight-tls-cert and --flight-tls-key the Flight listener
speaks TLS only: the clients people use (raw pyarrow.flight and the ADBC driver) reach it
with grpc+tls:// and the certificate as their trusted root, a plaintext grpc:// client to
the same port is refused rather than served, a client that does not trust the certificate
is refused, and the Postgres listener is unaffected. The certificate is self-signed for
127.0.0.1/localhost and made at test time. Half a TLS configuration (a certificate without
its key, or the reverse) is a startup error that names both options, not a server that
quietly serves plaintext."""

import datetime
import ipaddress
import re
import subprocess

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow.flight as flight
import pytest
from adbc_driver_flightsql import DatabaseOptions
from adbc_driver_manager import Error as AdbcError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import BIN, Server
from test_flight import raw_fetch, statement_query

# Short enough that a client stuck on a listener speaking the other protocol fails the
# test instead of hanging it.
RPC_TIMEOUT_S = 20
TIMEOUTS = {opt.value: str(RPC_TIMEOUT_S) for opt in
            (DatabaseOptions.TIMEOUT_QUERY, DatabaseOptions.TIMEOUT_FETCH, DatabaseOptions.TIMEOUT_UPDATE)}


def self_signed(directory):
    """A PEM certificate and key for localhost and 127.0.0.1; returns (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "flight-cert.pem", directory / "flight-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def call_options():
    return flight.FlightCallOptions(timeout=RPC_TIMEOUT_S)


def adbc_connect(uri, **options):
    db_kwargs = dict(TIMEOUTS, username="tester", password="secret", **options)
    return flight_sql.connect(uri, db_kwargs=db_kwargs, autocommit=True)


def assert_tls_only(server, flight_addr, cert_pem):
    """The checks on a Flight listener at flight_addr that serves TLS with cert_pem."""
    tls_uri, plain_uri = f"grpc+tls://{flight_addr}", f"grpc://{flight_addr}"

    client = flight.FlightClient(tls_uri, tls_root_certs=cert_pem)
    try:
        key, value = client.authenticate_basic_token("tester", "secret", call_options())
        assert key.lower() == b"authorization" and value.startswith(b"Bearer ")
        with_token = flight.FlightCallOptions(headers=[(key, value)], timeout=RPC_TIMEOUT_S)
        assert raw_fetch(client, statement_query("SELECT 40 + 2 AS answer"), with_token).to_pylist() == [{"answer": 42}]
    finally:
        client.close()

    with server.connect() as pg:
        pg.execute("CREATE TABLE tls_t (id BIGINT NOT NULL, name TEXT)")
        pg.execute("INSERT INTO tls_t VALUES (1, 'from pg')")
    with adbc_connect(tls_uri, **{DatabaseOptions.TLS_ROOT_CERTS.value: cert_pem.decode()}) as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO tls_t VALUES (2, 'from flight'), (3, NULL)")
            assert cur.rowcount == 2
            cur.execute("SELECT id, name FROM tls_t WHERE id >= $1 ORDER BY id", (1,))
            assert cur.fetchall() == [(1, "from pg"), (2, "from flight"), (3, None)]

    # Plaintext to the TLS port: refused, within the timeout, by both clients.
    plain = flight.FlightClient(plain_uri)
    try:
        with pytest.raises(flight.FlightError):
            plain.authenticate_basic_token("tester", "secret", call_options())
        with pytest.raises(flight.FlightError):
            raw_fetch(plain, statement_query("SELECT 1 AS one"), call_options())
    finally:
        plain.close()
    with pytest.raises(AdbcError):
        with adbc_connect(plain_uri) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            cur.fetchall()

    # TLS without trusting this certificate: the server's certificate is really checked.
    untrusting = flight.FlightClient(tls_uri)
    try:
        with pytest.raises(flight.FlightError):
            untrusting.authenticate_basic_token("tester", "secret", call_options())
    finally:
        untrusting.close()

    # Nothing of that hurt either listener.
    with adbc_connect(tls_uri, **{DatabaseOptions.TLS_ROOT_CERTS.value: cert_pem.decode()}) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM tls_t")
            assert cur.fetchall() == [(3,)]
    assert server.proc.poll() is None, server.log()
    with server.connect() as pg:
        assert pg.execute("SELECT id, name FROM tls_t ORDER BY id").fetchall() == [
            (1, "from pg"), (2, "from flight"), (3, None)]


def test_flight_with_a_certificate_serves_tls_only_and_postgres_is_unaffected(tmp_path):
    cert, key = self_signed(tmp_path / "tls")
    server = Server(tmp_path / "data", ["--flight-tls-cert", str(cert), "--flight-tls-key", str(key)]).start()
    try:
        assert_tls_only(server, server.flight_addr, cert.read_bytes())
    finally:
        server.stop(9)


@pytest.mark.parametrize("given", ["--flight-tls-cert", "--flight-tls-key"])
def test_half_a_tls_configuration_refuses_to_start_naming_both_options(tmp_path, given):
    cert, key = self_signed(tmp_path / "tls")
    data_dir = tmp_path / "data"
    proc = subprocess.run(
        [BIN, "serve", "--data-dir", str(data_dir), "--pg-addr", "127.0.0.1:0", "--flight-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
         given, str(cert if given == "--flight-tls-cert" else key)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert re.search(r"flight[_-]tls[_-]cert", proc.stderr) and re.search(r"flight[_-]tls[_-]key", proc.stderr), \
        proc.stderr
    assert not (data_dir / "listeners.json").exists(), "it never listened"
