"""``POST /_strangler/sns``: an Amazon SNS HTTP(S) subscription endpoint.

Every message is checked before anything else happens: envelope, topic allow-list,
certificate URL, signature (see strangler.sidecar.sns). Then a Notification's Message is
taken in like ``/_strangler/notifications``, a SubscriptionConfirmation is confirmed by
fetching its SubscribeURL (SNS hosts only) and an UnsubscribeConfirmation is logged.
"""

from __future__ import annotations

import structlog
from flask import Blueprint, Response, jsonify, request

from strangler.sidecar.bodies import read_body
from strangler.sidecar.errors import json_error
from strangler.sidecar.exceptions import (
    SnsCertificateUnavailable,
    SnsConfirmationFailed,
    SnsError,
    SnsMessageInvalid,
    SnsTopicNotAllowed,
    UntrustedSnsUrl,
)
from strangler.sidecar.intake import take_in
from strangler.sidecar.sns import (
    NOTIFICATION,
    SUBSCRIPTION_CONFIRMATION,
    SnsMessage,
    check_subscribe_url,
)
from strangler.sidecar.state import sidecar_state

__all__ = ["MAX_SNS_BYTES", "blueprint"]

# SNS messages are at most 256 KiB; the envelope adds a few hundred bytes.
MAX_SNS_BYTES = 300 * 1024
SOURCE = "sns"
blueprint = Blueprint("sns", __name__)
_log = structlog.get_logger(__name__)


@blueprint.post("/_strangler/sns")
def sns() -> Response:
    """Verify one SNS message and act on its type."""
    state = sidecar_state()
    message = SnsMessage.parse(read_body(MAX_SNS_BYTES))
    announced = request.headers.get("x-amz-sns-message-type")
    if announced is not None and announced != message.type:
        raise SnsMessageInvalid("Type", f"{message.type!r} disagrees with the header {announced!r}")
    state.sns.verify(message)
    log = _log.bind(topic_arn=message.topic_arn, message_id=message.message_id)
    if message.type == NOTIFICATION:
        return take_in(state, message.message, source=SOURCE)
    if message.type == SUBSCRIPTION_CONFIRMATION:
        state.confirm_subscription(check_subscribe_url(message.fields["SubscribeURL"]))
        log.info("sns_subscription_confirmed")
        return jsonify({"type": message.type, "confirmed": True})
    log.warning("sns_subscription_removed", unsubscribe_message=message.message)
    return jsonify({"type": message.type, "confirmed": False})


@blueprint.errorhandler(SnsError)
def _refused(exc: SnsError) -> Response:
    if isinstance(exc, SnsMessageInvalid | UntrustedSnsUrl):
        status, code = 400, "invalid_sns_message"
    elif isinstance(exc, SnsTopicNotAllowed):
        status, code = 403, "topic_not_allowed"
    elif isinstance(exc, SnsCertificateUnavailable):
        status, code = 502, "certificate_unavailable"
    elif isinstance(exc, SnsConfirmationFailed):
        status, code = 502, "confirmation_failed"
    else:
        status, code = 403, "invalid_signature"
    _log.warning("sns_message_refused", error=str(exc), status=status)
    return json_error(status, code, str(exc))
