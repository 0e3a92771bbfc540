"""boto3 clients for the EC2 publisher: one botocore retry config, credentials from the standard chain.

Endpoints are never set here: boto3 itself honours `AWS_ENDPOINT_URL` (and the per-service
`AWS_ENDPOINT_URL_EC2` ...), which is how the same code runs against a local moto server.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from rel_eng.errors import InputError, RelEngError
from rel_eng.config.ec2 import Ec2Config

# Error codes worth another try at our level once botocore's own retries are spent.
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "RequestLimitExceeded", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "SlowDown",
    "InternalServerException", "InternalError", "InternalFailure", "ServiceUnavailable",
    "ServiceUnavailableException", "Unavailable", "RequestTimeout", "RequestTimeoutException",
})
TRANSIENT_EXCEPTIONS = (
    botocore.exceptions.ConnectionError,  # includes EndpointConnectionError, ConnectTimeoutError
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ResponseStreamingError,
)


class Ec2Error(RelEngError):
    """An AWS call failed for a reason other than bad input; rerunning resumes where it stopped."""


def error_code(exc: BaseException) -> str:
    """The structured AWS error code of a ClientError, '' for anything else."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_EXCEPTIONS):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in RETRYABLE_CODES or status >= 500
    return False


def describe_failure(what: str, exc: BaseException) -> Ec2Error:
    """One line naming the operation and the AWS error code, never the request (it may be signed)."""
    code = error_code(exc)
    if code:
        message = exc.response.get("Error", {}).get("Message", "")  # type: ignore[attr-defined]
        return Ec2Error(f"{what} failed: {code}: {message}".rstrip(": "))
    return Ec2Error(f"{what} failed: {type(exc).__name__}: {exc}")


class AwsClients:
    """Clients per (service, region), all sharing one botocore retry/timeout config.

    boto3 sessions are not thread-safe, clients are: clients are made under a lock and then
    shared by the worker threads.
    """

    def __init__(self, cfg: Ec2Config, session: boto3.session.Session | None = None):
        self.session = session or boto3.session.Session()
        self.botocore_config = botocore.config.Config(
            retries={"mode": cfg.retry_mode, "total_max_attempts": cfg.max_attempts},
            # one pooled connection per block worker, so the pool never throttles the workers
            max_pool_connections=max(10, cfg.workers + 2),
            connect_timeout=10,
            read_timeout=120,
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self.session.client(
                    service, region_name=region, config=self.botocore_config)
            return self._clients[key]

    def ec2(self, region: str) -> Any:
        return self.client("ec2", region)

    def ssm(self, region: str) -> Any:
        return self.client("ssm", region)

    def require_credentials(self) -> None:
        """Fail before any upload when the standard chain yields no credentials.

        Only the presence is checked; the keys themselves are never looked at or shown.
        """
        try:
            creds = self.session.get_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            raise InputError(
                f"AWS credentials could not be loaded: {type(exc).__name__}",
                hint="fix the AWS profile or credential process",
            ) from None
        if creds is None:
            raise InputError(
                "no AWS credentials found (environment, shared credentials/config file, instance role)",
                hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run on an instance with a role",
            )


def waiter_config(cfg: Ec2Config) -> dict[str, int]:
    """Bounded botocore waiter: poll every poll_interval_s, give up after wait_timeout_s."""
    delay = max(1, cfg.poll_interval_s)
    return {"Delay": delay, "MaxAttempts": max(1, -(-cfg.wait_timeout_s // delay))}


def waiter_failure(what: str, cfg: Ec2Config, exc: botocore.exceptions.WaiterError) -> Ec2Error:
    """A bounded wait that ran out or hit a failure state, as one line."""
    last = exc.last_response if isinstance(exc.last_response, dict) else {}
    code = last.get("Error", {}).get("Code", "")
    reason = code or str(exc.kwargs.get("reason", "")) or "gave up"
    return Ec2Error(f"{what} not ready within {cfg.wait_timeout_s}s: {reason}",
                    hint="rerun the publish later; finished steps are not repeated")
