"""The outbound side of the SNS endpoint: certificate downloads and subscription confirms.

Both take URLs that sns.check_* already accepted, never follow redirects (a redirect
could lead off the SNS hosts) and time out.
"""

from __future__ import annotations

import requests

from strangler.sidecar.exceptions import SnsCertificateUnavailable, SnsConfirmationFailed
from strangler.sidecar.sns import check_signing_cert_url, check_subscribe_url

__all__ = ["HttpCertFetcher", "HttpSubscriptionConfirmer"]

_TIMEOUT_S = (2.0, 5.0)
_MAX_CERT_BYTES = 64 * 1024


class HttpCertFetcher:
    """Downloads signing certificates (at most 64 KiB) over HTTPS."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self._session = session or requests.Session()

    def __call__(self, url: str) -> bytes:
        """PEM bytes of the certificate at ``url``; raises SnsCertificateUnavailable."""
        check_signing_cert_url(url)
        try:
            with self._session.get(
                url, timeout=_TIMEOUT_S, allow_redirects=False, stream=True
            ) as response:
                if response.status_code != 200:
                    raise SnsCertificateUnavailable(url, f"HTTP {response.status_code}")
                body = response.raw.read(_MAX_CERT_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise SnsCertificateUnavailable(url, str(exc)) from exc
        if len(body) > _MAX_CERT_BYTES:
            raise SnsCertificateUnavailable(url, f"larger than {_MAX_CERT_BYTES} bytes")
        return bytes(body)


class HttpSubscriptionConfirmer:
    """Confirms a subscription by fetching its SubscribeURL, as SNS asks."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self._session = session or requests.Session()

    def __call__(self, url: str) -> None:
        """GET ``url``; raises SnsConfirmationFailed when SNS does not answer 200."""
        check_subscribe_url(url)
        try:
            response = self._session.get(url, timeout=_TIMEOUT_S, allow_redirects=False)
        except requests.RequestException as exc:
            raise SnsConfirmationFailed(url, str(exc)) from exc
        if response.status_code != 200:
            raise SnsConfirmationFailed(url, f"HTTP {response.status_code}")
