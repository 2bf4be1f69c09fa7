"""TLS served directly by uvicorn (``[tls] cert_file`` / ``key_file``), and the
``stemedb_tls_cert_expiry_seconds`` gauge.

The gauge is the number of seconds until the served certificate's ``notAfter``,
computed at scrape time (negative once it has expired); alert on it, e.g.
``stemedb_tls_cert_expiry_seconds < 14 * 86400``. It has no sample when TLS is off.
``notAfter`` is read once at start-up (uvicorn loads the certificate once too) with
``openssl x509 -enddate`` (the ``cryptography`` package is not a dependency); a
certificate that cannot be read stops start-up with a message naming the file.
"""

from __future__ import annotations

import calendar
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stemedb.config import TlsConfig
from stemedb.errors import ValidationError

OPENSSL_TIMEOUT_SECONDS: Final = 10
_ENDDATE_PREFIX: Final = "notAfter="


def _invalid(path: str, why: str) -> ValidationError:
    return ValidationError("tls.cert_file", "unreadable", f"tls.cert_file {path}: {why}")


def parse_enddate(text: str) -> float:
    """``notAfter=Jan  2 03:04:05 2031 GMT`` (``openssl x509 -enddate``) → Unix seconds."""
    line = text.strip()
    if not line.startswith(_ENDDATE_PREFIX):
        raise ValueError(f"unexpected openssl output: {line!r}")
    value = " ".join(line[len(_ENDDATE_PREFIX) :].split())
    return float(calendar.timegm(time.strptime(value, "%b %d %H:%M:%S %Y %Z")))


def certificate_not_after(cert_file: str) -> float:
    """The ``notAfter`` of the first certificate in ``cert_file`` (PEM), Unix seconds."""
    if not Path(cert_file).is_file():
        raise _invalid(cert_file, "no such file")
    openssl = shutil.which("openssl")
    if openssl is None:
        raise _invalid(cert_file, "the openssl command is needed to read the certificate")
    result = subprocess.run(
        [openssl, "x509", "-enddate", "-noout", "-in", cert_file],
        capture_output=True,
        text=True,
        timeout=OPENSSL_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise _invalid(cert_file, "not a PEM certificate (openssl x509 failed)")
    try:
        return parse_enddate(result.stdout)
    except ValueError as exc:
        raise _invalid(cert_file, str(exc)) from None


class CertificateExpiry(Collector):
    def __init__(self, not_after: float | None, clock: Callable[[], float] = time.time) -> None:
        self.not_after = not_after
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "stemedb_tls_cert_expiry_seconds",
            "Seconds until the served TLS certificate expires (negative once expired).",
        )
        if self.not_after is not None:
            family.add_metric([], round(self.not_after - self._clock(), 3))
        yield family


def watch_certificate(config: TlsConfig, registry: CollectorRegistry) -> CertificateExpiry:
    """Register the expiry gauge; read the certificate when TLS is configured."""
    if bool(config.cert_file) != bool(config.key_file):
        raise ValidationError(
            "tls", "incomplete", "set both tls.cert_file and tls.key_file, or neither"
        )
    not_after = certificate_not_after(config.cert_file) if config.cert_file else None
    collector = CertificateExpiry(not_after)
    registry.register(collector)
    return collector
