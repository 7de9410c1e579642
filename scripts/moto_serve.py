"""moto server with DynamoDB requests serialised, AWS's documented limits enforced,
and an O(items) TransactWriteItems.

moto 5.2.5 serves requests on threads, but its DynamoDB backend is not thread-safe:
TransactWriteItems deep-copies the table while other threads write to it and fails
with "dictionary changed size during iteration" (HTTP 500, HTML body). Real DynamoDB
has no such race, so we serialise DynamoDB calls here and leave everything else
(SQS long polls above all) concurrent.

moto also accepts calls that real AWS rejects. The patches below (each a narrow wrapper
around one moto backend or response-handler method, raising moto's own exception
classes, so errors are rendered exactly as moto renders them for every protocol) add the documented validations, each commented with the AWS
page that states the rule:

  Lambda  CreateEventSourceMapping / UpdateEventSourceMapping on SQS: queue visibility
          timeout >= function timeout, BatchSize bounds, batching window rules.
  ECS     RunTask: overrides <= 8192 characters, count 1..10, clientToken idempotency.
  SQS     SendMessage / SendMessageBatch sizes (body + attributes), batch size and
          entry count, ChangeMessageVisibility range, FIFO deduplication returning the
          first MessageId for the whole 5-minute window.
  DynamoDB item size (AWS's size formula, 400 KB) on PutItem, UpdateItem,
          BatchWriteItem and TransactWriteItems; TransactWriteItems action count,
          ClientRequestToken length and 10-minute idempotency.

and replace moto's TransactWriteItems (which deep-copies every table named in the
transaction, once per action: O(table size) per call) with one that keeps pre-images of
only the items the transaction touches and restores exactly those on cancellation.

usage: python scripts/moto_serve.py HOST PORT
"""

import base64
import copy
import hashlib
import io
import json
import os
import signal
import string
import sys
import threading
import time
import traceback
from collections import OrderedDict
from decimal import Decimal, InvalidOperation

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

from moto.core.exceptions import JsonRESTError
from moto.awslambda.models import LambdaBackend
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    ItemSizeTooLarge,
    ItemSizeToUpdateTooLarge,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.responses import DynamoHandler
from moto.ecs.exceptions import ECSException, InvalidParameterException
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.sqs.exceptions import (
    BatchRequestTooLong,
    InvalidParameterValue,
    MaxVisibilityTimeout,
    TooManyEntriesInBatchRequest,
)
from moto.sqs.models import Queue, SQSBackend, sqs_backends

_dynamodb = threading.Lock()


class SerialiseDynamoDB:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with _dynamodb:
                # Consume the response inside the lock: moto builds it lazily.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def _wraps(cls, name):
    """Decorator: replace cls.name with the decorated function, which gets the original
    as its first argument."""

    def deco(fn):
        original = getattr(cls, name)

        def patched(*args, **kwargs):
            return fn(original, *args, **kwargs)

        patched.__name__ = name
        patched.__doc__ = fn.__doc__
        patched.original = original
        setattr(cls, name, patched)
        return patched

    return deco


class _ExpiringMap:
    """key -> value, each entry dropped `ttl` seconds after it was set. Entries are kept
    in insertion order, so expiry is amortised O(1) (the SDKs send a fresh idempotency
    token with every call, so these maps see one entry per request). Not thread-safe:
    callers hold a lock."""

    def __init__(self, ttl):
        self.ttl = ttl
        self.entries = OrderedDict()  # key -> (expiry, value)

    def _expire(self, now):
        while self.entries:
            key, (expiry, _) = next(iter(self.entries.items()))
            if expiry > now:
                break
            del self.entries[key]

    def get(self, key, now):
        self._expire(now)
        entry = self.entries.get(key)
        return None if entry is None else entry[1]

    def set(self, key, value, now):
        self.entries.pop(key, None)
        self.entries[key] = (now + self.ttl, value)


def _fingerprint(params):
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


# ======================================================================================
# Lambda: event source mappings on SQS
# ======================================================================================


class _LambdaInvalidParameterValue(JsonRESTError):
    """Lambda's REST-JSON error: header x-amzn-ErrorType, body {"Type": "User", "message": ...}."""

    def __init__(self, message):
        super().__init__("InvalidParameterValueException", message)
        self.description = json.dumps({"Type": "User", "message": message})


def _check_sqs_event_source_mapping(lambda_backend, function_name, source_arn, batch_size, window):
    parts = (source_arn or "").split(":")
    if len(parts) < 6 or parts[2] != "sqs":
        return  # not an SQS source (or malformed: moto rejects it itself)
    region, account, queue_name = parts[3], parts[4], parts[5]
    fifo = queue_name.endswith(".fifo")
    batch = 10 if batch_size is None else int(batch_size)
    window = 0 if window is None else int(window)

    # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
    # "BatchSize ... For standard queues, the maximum is 10,000. For FIFO queues, the
    # maximum is 10." and "MaximumBatchingWindowInSeconds ... Batching window is not
    # supported for FIFO queues". (The messages for these three are not quoted in the
    # docs; the FIFO one is the text AWS used when SQS batches were capped at 10.)
    if fifo and not 1 <= batch <= 10:
        raise _LambdaInvalidParameterValue("Maximum batch size must be between 1 and 10 inclusive")
    if not fifo and not 1 <= batch <= 10000:
        raise _LambdaInvalidParameterValue("Maximum batch size must be between 1 and 10000 inclusive")
    if fifo and window > 0:
        raise _LambdaInvalidParameterValue("Batching window is not supported for FIFO queues")

    # https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
    # MaximumBatchingWindowInSeconds: "For Kinesis, DynamoDB, and Amazon SQS event
    # sources, when you set BatchSize to a value greater than 10, you must set
    # MaximumBatchingWindowInSeconds to at least 1."
    if batch > 10 and window < 1:
        raise _LambdaInvalidParameterValue(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
        )

    # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
    # "Your function's timeout must be less than or equal to the queue's visibility
    # timeout. Lambda validates this requirement when you create or update an event
    # source mapping and will return an error if the function timeout exceeds the
    # queue's visibility timeout."
    try:
        queue = sqs_backends[account][region].queues.get(queue_name)
        function = lambda_backend.get_function(function_name)
    except Exception:
        return  # unknown function or queue: moto answers ResourceNotFound itself
    if queue is None or function is None:
        return
    visibility = int(queue.visibility_timeout)
    timeout = int(function.timeout)
    if visibility < timeout:
        raise _LambdaInvalidParameterValue(
            f"Queue visibility timeout: {visibility} seconds is less than Function timeout: {timeout} seconds"
        )


# On the backend, so mappings created through CloudFormation (scripts/stack_emulator.py)
# are validated too, as they are in AWS.
@_wraps(LambdaBackend, "create_event_source_mapping")
def _create_event_source_mapping(original, self, spec):
    _check_sqs_event_source_mapping(
        self,
        spec.get("FunctionName"),
        spec.get("EventSourceArn"),
        spec.get("BatchSize"),
        spec.get("MaximumBatchingWindowInSeconds"),
    )
    return original(self, spec)


@_wraps(LambdaBackend, "update_event_source_mapping")
def _update_event_source_mapping(original, self, uuid, spec):
    esm = self.get_event_source_mapping(uuid)
    if esm is not None:
        # The update is validated against the mapping as it will be after the update.
        _check_sqs_event_source_mapping(
            self,
            spec.get("FunctionName") or esm.function_arn,
            esm.event_source_arn,
            spec["BatchSize"] if "BatchSize" in spec else esm.batch_size,
            spec["MaximumBatchingWindowInSeconds"]
            if "MaximumBatchingWindowInSeconds" in spec
            else esm.max_batch_window,
        )
    return original(self, uuid, spec)


# ======================================================================================
# ECS: RunTask
# ======================================================================================

_ecs_lock = threading.Lock()
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/ECS_Idempotency.html
# "The RunTask client token has a time to live (TTL) of 24 hours."
_ecs_tokens = _ExpiringMap(24 * 3600)  # (account, region, cluster, token) -> (fingerprint, result)


@_wraps(EC2ContainerServiceResponse, "run_task")
def _run_task(original, self):
    try:
        raw = json.loads(self.body) if self.body else {}
    except (TypeError, ValueError):
        raw = {}
    if not isinstance(raw, dict):
        raw = {}

    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
    # overrides: "A total of 8192 characters are allowed for overrides. This limit
    # includes the JSON formatting characters of the override structure."
    # AWS answers InvalidParameterException "Container Overrides length must be at most 8192".
    overrides = raw.get("overrides", self._get_param("overrides"))
    if overrides is not None:
        length = len(json.dumps(overrides, separators=(",", ":"), ensure_ascii=False))
        if length > 8192:
            raise InvalidParameterException("Container Overrides length must be at most 8192")

    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
    # count: "You can specify up to 10 tasks for each call." (Error code per the API's
    # InvalidParameterException; the exact AWS message is not documented.)
    count = raw.get("count", self._get_param("count"))
    if count is not None and not 1 <= int(count) <= 10:
        raise InvalidParameterException(f"count must be between 1 and 10 (inclusive); {count} was given")

    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/ECS_Idempotency.html
    # "If you retry a request that completed successfully using the same client token
    # and the same request parameters, the result of the original request is returned.
    # If you retry ... with the same client token, but one or more of the parameters
    # are changed ..., the retry fails with a ConflictException." Tokens are scoped to
    # the cluster.
    token = raw.get("clientToken") or self._get_param("clientToken")
    if not token:
        return original(self)
    cluster = str(raw.get("cluster") or "default").rsplit("/", 1)[-1]
    key = (self.current_account, self.region, cluster, token)
    fingerprint = _fingerprint({k: v for k, v in raw.items() if k != "clientToken"})
    with _ecs_lock:
        now = time.monotonic()
        hit = _ecs_tokens.get(key, now)
        if hit is not None:
            if hit[0] != fingerprint:
                raise ECSException(
                    "ConflictException",
                    "The specified client token has already been used in a RunTask request with different parameters.",
                )
            return hit[1]
        result = original(self)
        _ecs_tokens.set(key, (fingerprint, result), now)
        return result


# ======================================================================================
# SQS
# ======================================================================================

# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
# "The maximum allowed individual message size and the maximum total payload size (the
# sum of the individual lengths of all of the batched messages) are both 1 MiB
# 1,048,576 bytes." (Formerly 256 KiB = 262,144 bytes. A queue's own MaximumMessageSize
# attribute, 1,024..1,048,576 bytes, default 1,048,576, lowers the per-message limit.)
_SQS_MAX_BATCH_BYTES = 1_048_576
_SQS_MAX_BATCH_ENTRIES = 10
_SQS_MAX_VISIBILITY = 43_200


def _sqs_blob_len(value):
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    try:
        return len(base64.b64decode(value, validate=True))
    except Exception:
        return len(str(value).encode("utf-8"))


def _sqs_message_size(body, attributes):
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html
    # "All parts of the message attribute, including Name, Type, and Value, are part of
    # the message size restriction (1 MiB or 1,048,576 bytes)."
    size = len((body or "").encode("utf-8"))
    for name, attr in (attributes or {}).items():
        size += len(name.encode("utf-8"))
        size += len(str(attr.get("DataType", "")).encode("utf-8"))
        if attr.get("StringValue") is not None:
            size += len(str(attr["StringValue"]).encode("utf-8"))
        if attr.get("BinaryValue") is not None:
            size += _sqs_blob_len(attr["BinaryValue"])
    return size


def _sqs_check_message_size(queue, size):
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
    # MessageBody: "The maximum size is 1 MiB or 1,048,576 bytes", bounded by the queue's
    # MaximumMessageSize ("The limit of how many bytes a message can contain before
    # Amazon SQS rejects it", API_SetQueueAttributes.html).
    limit = int(queue.maximum_message_size)
    if size > limit:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
        )


@_wraps(SQSBackend, "send_message")
def _send_message(original, self, queue_name, message_body, message_attributes=None, *args, **kwargs):
    queue = self.get_queue(queue_name)
    _sqs_check_message_size(queue, _sqs_message_size(message_body, message_attributes))
    return original(self, queue_name, message_body, message_attributes, *args, **kwargs)


@_wraps(SQSBackend, "send_message_batch")
def _send_message_batch(original, self, queue_name, entries):
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
    # "You can use SendMessageBatch to send up to 10 messages" -> TooManyEntriesInBatchRequest;
    # "The length of all the messages put together is more than the limit" -> BatchRequestTooLong.
    if len(entries) > _SQS_MAX_BATCH_ENTRIES:
        raise TooManyEntriesInBatchRequest(len(entries))
    queue = self.get_queue(queue_name)
    sizes = [_sqs_message_size(e.get("MessageBody"), e.get("MessageAttributes")) for e in entries.values()]
    if sum(sizes) > _SQS_MAX_BATCH_BYTES:
        raise BatchRequestTooLong(sum(sizes))
    # Validate every entry before sending any (moto would otherwise send a prefix).
    for size in sizes:
        _sqs_check_message_size(queue, size)
    return original(self, queue_name, entries)


@_wraps(SQSBackend, "change_message_visibility")
def _change_message_visibility(original, self, queue_name, receipt_handle, visibility_timeout):
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
    # VisibilityTimeout: "Values range: 0 to 43200. Maximum: 12 hours."
    # (moto already rejects > 43200 in its response layer; this adds < 0.)
    value = int(visibility_timeout)
    if not 0 <= value <= _SQS_MAX_VISIBILITY:
        raise InvalidParameterValue(
            f"Value {value} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and {_SQS_MAX_VISIBILITY}."
        )
    return original(self, queue_name, receipt_handle, visibility_timeout)


@_wraps(SQSBackend, "change_message_visibility_batch")
def _change_message_visibility_batch(original, self, queue_name, entries):
    # Same range per entry; in a batch a bad entry is a per-entry failure (moto reports
    # > 43200 that way already, with this message), not a failed request.
    def valid(entry):
        try:
            return 0 <= int(entry["VisibilityTimeout"]) <= _SQS_MAX_VISIBILITY
        except (KeyError, TypeError, ValueError):
            return True  # let moto report it as it does
    success, failed = original(self, queue_name, [e for e in entries if valid(e)])
    failed = failed + [
        {"Id": e["Id"], "SenderFault": True, "Code": "InvalidParameterValue", "Message": "Visibility timeout invalid"}
        for e in entries
        if not valid(e)
    ]
    return success, failed


# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
# MessageDeduplicationId: "If a message with a particular MessageDeduplicationId is sent
# successfully, any messages sent with the same MessageDeduplicationId are accepted
# successfully but aren't delivered during the 5-minute deduplication interval."
# Real SQS answers such a duplicate with the first message's MessageId (and sequence
# number), for the whole interval, even if the first message was already deleted. moto
# only compares against messages still in the queue and answers a fresh MessageId.
_SQS_DEDUP_SECONDS = 5 * 60
_sqs_dedup_lock = threading.Lock()


@_wraps(Queue, "add_message")
def _add_message(original, self, message):
    if not (self.fifo_queue and message.deduplication_id):
        return original(self, message)
    # DeduplicationScope "messageGroup" (high-throughput FIFO) scopes IDs to the group.
    group = message.group_id if getattr(self, "deduplication_scope", "queue") == "messageGroup" else None
    key = (group, message.deduplication_id)
    now = time.monotonic()
    with _sqs_dedup_lock:
        seen = self.__dict__.get("_switchyard_dedup")
        if seen is None:
            seen = self.__dict__["_switchyard_dedup"] = _ExpiringMap(_SQS_DEDUP_SECONDS)
        hit = seen.get(key, now)
        if hit is not None:
            message.id, message.sequence_number = hit
            return None
        seen.set(key, (message.id, message.sequence_number), now)
    if self.lambda_event_source_mappings:
        return original(self, message)
    # Not a duplicate, so moto's own duplicate scan (every message in the queue, compared by
    # deduplication ID: O(queue) per send) would find nothing; append as moto does. A queue
    # with an event source mapping keeps moto's path, which also invokes the function.
    with self._messages_lock:
        self._messages.append(message)
        self._messages_lock.notify_all()
    return None


# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
# ReceiveRequestAttemptId (FIFO queues): "If a networking issue occurs after a ReceiveMessage
# action, and instead of a response you receive a generic error, it is possible to retry the
# same action with an identical ReceiveRequestAttemptId to retrieve the same set of messages,
# even if their visibility timeout has not yet expired", "if none of the messages have been
# modified (deleted or had their visibility changes)"; "If a retry occurs within the
# deduplication interval, it resets the visibility timeout"; the ID lives 5 minutes. moto
# ignores it, so a receive whose response was lost hid its messages for a whole visibility
# timeout (the load suite's `--aws-faults` found replies 60 s late this way).
_SQS_ATTEMPT_SECONDS = 5 * 60
_SQS_ATTEMPT_MAX_LEN = 128
_SQS_ATTEMPT_CHARS = set(string.ascii_letters + string.digits + string.punctuation)
# (account, region, queue, id) -> (messages, result, expiry); the window runs from the first receive
_sqs_attempts = _ExpiringMap(_SQS_ATTEMPT_SECONDS)
_sqs_attempts_lock = threading.Lock()


def _unmodified(queue, received):
    """Every message of an earlier receive still in the queue, in flight, and neither
    received again nor given another visibility since (its visibility deadline unchanged)."""
    present = {id(m) for m in queue._messages}  # O(queue), as moto's own receive is
    return all(
        id(m) in present and m.receipt_handle == handle and m.visible_at == visible_at and not m.visible
        for m, handle, visible_at in received
    )


from moto.sqs.responses import SQSResponse  # noqa: E402


@_wraps(SQSResponse, "receive_message")
def _receive_message(original, self):
    attempt = self._get_param("ReceiveRequestAttemptId")
    queue_name = self._get_queue_name()
    queue = self.sqs_backend.get_queue(queue_name)
    if attempt is None or not queue.fifo_queue:
        return original(self)  # AWS applies the ID to FIFO queues only
    if not 1 <= len(attempt) <= _SQS_ATTEMPT_MAX_LEN or not set(attempt) <= _SQS_ATTEMPT_CHARS:
        raise InvalidParameterValue(
            "Value for parameter ReceiveRequestAttemptId is invalid. Reason: it must be 1 to 128 "
            "alphanumeric or punctuation characters."
        )
    key = (self.current_account, self.region, queue_name, attempt)
    now = time.monotonic()
    with _sqs_attempts_lock:
        hit = _sqs_attempts.get(key, now)
        if hit is not None:
            received, result, expiry = hit
            if not _unmodified(queue, received):
                # What SQS answers (the ID names a receive whose messages have changed since).
                raise InvalidParameterValue(
                    "The receiveRequestAttemptId is not valid anymore since the receive call is not retryable."
                )
            try:  # as moto's receive_message validates it
                visibility = self._get_validated_visibility_timeout()
            except TypeError:
                visibility = queue.visibility_timeout
            except ValueError:
                raise MaxVisibilityTimeout()
            for m, _, _ in received:
                m.change_visibility(visibility)
            # Same messages and receipt handles; the window still runs from the first receive.
            _sqs_attempts.entries[key] = (expiry, ([(m, h, m.visible_at) for m, h, _ in received], result, expiry))
            return result
    result = original(self)
    ids = {msg["MessageId"] for msg in (getattr(result, "result", None) or {}).get("Messages", [])}
    if ids:  # an empty receive is simply repeated (a retried long poll waits again)
        received = [(m, m.receipt_handle, m.visible_at) for m in queue._messages if m.id in ids]
        with _sqs_attempts_lock:
            _sqs_attempts.set(key, (received, result, now + _SQS_ATTEMPT_SECONDS), now)
    return result


# ======================================================================================
# DynamoDB
# ======================================================================================

# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html
# "The maximum item size in DynamoDB is 400 KB, which includes both attribute name
# binary length (UTF-8 length) and attribute value lengths (again binary length)", and
# "DynamoDB denotes 1 KB = 1024 bytes".
_DDB_MAX_ITEM_BYTES = 400 * 1024


def _ddb_number_size(text):
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
    # "Numbers are variable length, with up to 38 significant digits. Leading and
    # trailing zeroes are trimmed. The size of a number is approximately (1 byte per two
    # significant digits) + (1 byte)."
    try:
        digits = Decimal(str(text)).normalize().as_tuple().digits
    except (InvalidOperation, ValueError):
        return len(str(text))
    significant = len(digits) if any(digits) else 1
    return (significant + 1) // 2 + 1


def _ddb_binary_size(value):
    # "A binary value must be encoded in base64 format before it can be sent to
    # DynamoDB, but the value's raw byte length is used for calculating size."
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    try:
        return len(base64.b64decode(value))
    except Exception:
        return len(str(value).encode("utf-8"))


def _ddb_value_size(value):
    """Size of one AttributeValue ({"S": ...} JSON or moto DynamoType), name excluded.
    Rules: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html"""
    if isinstance(value, DynamoType):
        kind, inner = value.type, value.value
    else:
        (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _ddb_number_size(inner)
    if kind == "B":
        return _ddb_binary_size(inner)
    if kind in ("BOOL", "NULL"):
        # "The size of a null attribute or a Boolean attribute is ... + (1 byte)."
        return 1
    if kind == "SS":
        return sum(len(v.encode("utf-8")) for v in inner)
    if kind == "NS":
        return sum(_ddb_number_size(v) for v in inner)
    if kind == "BS":
        return sum(_ddb_binary_size(v) for v in inner)
    # "An attribute of type List or Map requires 3 bytes of overhead, regardless of its
    # contents ... Each List or Map element also requires 1 byte of overhead."
    if kind == "L":
        return 3 + sum(1 + _ddb_value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + _ddb_value_size(v) for k, v in inner.items())
    return len(json.dumps(inner))


def _ddb_item_size(attrs):
    # "The total size of an item is the sum of the lengths of its attribute names and
    # values, plus any applicable overhead."
    return sum(len(name.encode("utf-8")) + _ddb_value_size(value) for name, value in attrs.items())


def _ddb_check_item_size(attrs):
    if attrs and _ddb_item_size(attrs) > _DDB_MAX_ITEM_BYTES:
        raise ItemSizeTooLarge()  # ValidationException "Item size has exceeded the maximum allowed size"


# moto's own cap (LimitedSizeDict, 405,000 by moto's own size estimate, re-summed on
# every attribute set) disagrees with AWS's formula both ways; the checks here replace it.
LimitedSizeDict.__setitem__ = dict.__setitem__


@_wraps(DynamoHandler, "put_item")
def _put_item(original, self):
    _ddb_check_item_size(self.body.get("Item"))
    return original(self)


@_wraps(DynamoHandler, "batch_write_item")
def _batch_write_item(original, self):
    # Validate every PutRequest before writing any (moto writes them one by one).
    for requests in (self.body.get("RequestItems") or {}).values():
        for request in requests:
            _ddb_check_item_size((request.get("PutRequest") or {}).get("Item"))
    return original(self)


# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
# ClientRequestToken: "A client request token is valid for 10 minutes after the first
# request that uses it is completed ... If you submit a request with the same client
# token but a change in other parameters within the 10-minute idempotency window,
# DynamoDB returns an IdempotentParameterMismatch exception." Length 1..36.
# TransactItems: "An ordered array of up to 100 TransactWriteItem objects".
_DDB_TOKEN_MAX_LEN = 36
_DDB_MAX_TRANSACT_ITEMS = 100
_ddb_tokens = _ExpiringMap(10 * 60)  # (account, region, token) -> (fingerprint, result)
_ddb_tokens_lock = threading.Lock()  # DynamoDB calls are serialised anyway; belt and braces


class _IdempotentParameterMismatch(JsonRESTError):
    def __init__(self):
        message = (
            "DynamoDB rejected the request because you retried a request with a different "
            "payload but with an idempotent token that was already used."
        )
        error_type = "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
        super().__init__(error_type, message)
        self.description = json.dumps({"__type": error_type, "message": message, "Message": message})


@_wraps(DynamoHandler, "transact_write_items")
def _transact_write_items(original, self):
    items = self.body.get("TransactItems") or []
    if len(items) > _DDB_MAX_TRANSACT_ITEMS:
        raise MockValidationException(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
            f"Member must have length less than or equal to {_DDB_MAX_TRANSACT_ITEMS}"
        )
    token = self.body.get("ClientRequestToken")
    if token is not None and not 1 <= len(token) <= _DDB_TOKEN_MAX_LEN:
        raise MockValidationException(
            f"1 validation error detected: Value '{token}' at 'clientRequestToken' failed to satisfy "
            f"constraint: Member must have length less than or equal to {_DDB_TOKEN_MAX_LEN}"
        )
    # A Put's item is known up front: AWS rejects the request (ValidationException).
    # An Update that grows an item past the limit cancels the transaction instead
    # (reason ValidationError), see _ddb_transact_write_items.
    for entry in items:
        _ddb_check_item_size((entry.get("Put") or {}).get("Item"))

    if token is None:
        return original(self)
    key = (self.current_account, self.region, token)
    fingerprint = _fingerprint({k: v for k, v in self.body.items() if k != "ClientRequestToken"})
    with _ddb_tokens_lock:
        hit = _ddb_tokens.get(key, time.monotonic())
        if hit is not None:
            if hit[0] != fingerprint:
                raise _IdempotentParameterMismatch()
            return hit[1]  # same request: success, nothing applied again
        result = original(self)  # only a successful transaction consumes the token
        _ddb_tokens.set(key, (fingerprint, result), time.monotonic())
        return result


class _PreImage:
    """The state of one item slot (table, hash, range) before a write, restorable exactly.

    moto 5.2.5 keeps no materialised secondary indexes: GSI/LSI queries and scans are
    computed from table.items on every call. So putting the very pre-image Item object
    back into table.items (or removing the slot) leaves every index exactly as it was;
    Table.put_item would instead re-validate, re-serialise, and append stream records."""

    __slots__ = ("table", "hash_key", "range_key", "item", "bucket_existed")

    def __init__(self, table, hash_key, range_key):
        self.table, self.hash_key, self.range_key = table, hash_key, range_key
        if table.range_key_attr is not None:
            bucket = table.items.get(hash_key)  # .get: never create a defaultdict bucket
            self.bucket_existed = bucket is not None
            current = bucket.get(range_key) if bucket is not None else None
        else:
            self.bucket_existed = False
            current = table.items.get(hash_key)
        self.item = copy.deepcopy(current) if current is not None else None  # O(item)

    def restore(self):
        items = self.table.items
        if self.table.range_key_attr is not None:
            if self.item is not None:
                items[self.hash_key][self.range_key] = self.item
            else:
                bucket = items.get(self.hash_key)
                if bucket is not None:
                    bucket.pop(self.range_key, None)
                    if not bucket and not self.bucket_existed:
                        del items[self.hash_key]
        elif self.item is not None:
            items[self.hash_key] = self.item
        else:
            items.pop(self.hash_key, None)


def _stream_length(table):
    shard = table.stream_shard
    return len(shard.items) if shard is not None else None


def _truncate_stream(table, length):
    shard = table.stream_shard
    if shard is not None and length is not None and len(shard.items) > length:
        del shard.items[length:]


def _item_key_values(backend, table, key):
    try:
        return backend.get_keys_value(table, key)
    except Exception:
        return None


@_wraps(DynamoDBBackend, "update_item")
def _update_item(original, self, table_name, key, *args, **kwargs):
    """UpdateItem is atomic in AWS, and the resulting item must fit the 400 KB limit
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html);
    AWS's message for an update is "Item size to update has exceeded the maximum allowed
    size" (listed under ValidationError in API_TransactWriteItems.html). moto mutates the
    stored item in place, so keep an O(item) pre-image and put it back on any failure."""
    table = self.get_table(table_name)
    keys = _item_key_values(self, table, key)
    if keys is None:
        return original(self, table_name, key, *args, **kwargs)
    before = _PreImage(table, *keys)
    stream = _stream_length(table)
    try:
        item = original(self, table_name, key, *args, **kwargs)
        if item is not None and _ddb_item_size(item.attrs) > _DDB_MAX_ITEM_BYTES:
            raise ItemSizeToUpdateTooLarge()  # "Item size to update has exceeded the maximum allowed size"
        return item
    except BaseException:
        before.restore()
        _truncate_stream(table, stream)
        raise


def _ddb_transact_write_items(self, transact_items):
    """moto's transact_write_items with the same checks, order and CancellationReasons,
    but O(items touched): instead of deep-copying each table (once per action!), keep a
    pre-image of each item slot just before the action writes it, and on any failure
    put back exactly those slots (removing items the transaction created)."""
    if len(transact_items) > _DDB_MAX_TRANSACT_ITEMS:
        raise TooManyTransactionsException()

    pre_images = []
    streams = {}  # id(table) -> (table, stream length before the transaction)
    target_items = set()

    def check_unicity(table_name, key):
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors = []  # [(Code, Message, Item)], one per action, (None, None, None) if it passed
    try:
        for item in transact_items:
            original_item = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")

                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                expression_attribute_names = op.get("ExpressionAttributeNames")
                expression_attribute_values = op.get("ExpressionAttributeValues")
                return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]

                check_unicity(table_name, key)

                table = self.get_table(table_name)
                hash_key, range_key = self.get_keys_value(table, key)
                if id(table) not in streams:
                    streams[id(table)] = (table, _stream_length(table))
                if op_type != "ConditionCheck":
                    pre_images.append(_PreImage(table, hash_key, range_key))

                current = table.get_item(hash_key, range_key)
                if condition_expression is not None:
                    condition_op = get_filter_expression(
                        condition_expression,
                        expression_attribute_names,
                        expression_attribute_values,
                    )
                    if not condition_op.expr(current):
                        if return_values_on_condition_check_failure == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)

                # The condition was just checked against this very item (DynamoDB calls are
                # serialised), so the write does not parse and check it a second time; and
                # an Update goes to moto's own update_item, not to _update_item's wrapper:
                # the pre-image above already covers the rollback, and the size check that
                # wrapper makes is made here.
                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Update":
                    updated = _update_item.original(
                        self,
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                    if updated is not None and _ddb_item_size(updated.attrs) > _DDB_MAX_ITEM_BYTES:
                        raise ItemSizeToUpdateTooLarge()
                errors.append((None, None, None))
            except ItemSizeToUpdateTooLarge as e:
                # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
                # "An item size becomes too large (bigger than 400 KB) ... because of
                # changes made by the transaction" cancels it; reason Code ValidationError.
                errors.append(("ValidationError", e.message, None))
            except (MultipleTransactionsException, MockValidationException):
                raise  # whole request rejected: roll back below and re-raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # noqa: BLE001 - same as moto: report, cancel below
                errors.append((type(e).__name__, str(e), original_item))

        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
    except BaseException:
        for pre_image in reversed(pre_images):
            pre_image.restore()
        for table, length in streams.values():
            _truncate_stream(table, length)
        raise


DynamoDBBackend.transact_write_items = _ddb_transact_write_items


# --------------------------------------------------------------------------- SQS long polls
# moto 5.2.5's long poll waits with `Condition.wait_for(lambda: queue.messages, 1)`: the
# predicate is true as soon as any message is visible, even one it cannot deliver (a FIFO
# message whose group has a message in flight — a worker holding a session's job). The poll
# then spins for its whole WaitTimeSeconds, re-listing the queue thousands of times a second:
# a few workers with held sessions pinned the emulator at 100 % CPU and slowed every other
# request (routes took tens of seconds). Real SQS just waits. Here: wait for a send (which
# notifies) or 100 ms, then look again — O(queue) at most ten times a second per poll.
from moto.sqs.models import Queue as _SqsQueue  # noqa: E402


def _sqs_wait_for_messages(self, timeout):
    with self._messages_lock:
        self._messages_lock.wait(timeout=min(float(timeout), 0.1))


_SqsQueue.wait_for_messages = _sqs_wait_for_messages


# --------------------------------------------------------------------------------------
# Per-request and per-message costs that grow with the queue (issue 11). A profile of the
# `fifo` scenario (py-spy on the emulator) showed moto spending most of its time not on our
# requests' work but on: the current time, computed as a naive datetime minus the epoch for
# every message of every scan (`Message.visible`/`delayed`, three scans per attribute read);
# `Queue.attributes`, which every SendMessage and ReceiveMessage reads (to validate, and for
# the retention period) and which computes ApproximateNumberOfMessages* with three more
# scans; and `list_of_moto_modules`, a directory listing plus an `isdir` per module on every
# request to find its backend. Same results, computed once.
# --------------------------------------------------------------------------------------
import moto.backends as _moto_backends  # noqa: E402
import moto.sqs.models as _sqs_models  # noqa: E402
from moto.core.utils import camelcase_to_underscores  # noqa: E402

_orig_unix_time = _sqs_models.unix_time
_orig_unix_time_millis = _sqs_models.unix_time_millis


def _fast_unix_time(dt=None):
    return time.time() if dt is None else _orig_unix_time(dt)


def _fast_unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _orig_unix_time_millis(dt)


_sqs_models.unix_time = _fast_unix_time
_sqs_models.unix_time_millis = _fast_unix_time_millis


def _visible_messages(self):
    now = time.time() * 1000.0
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


def _counts(self):
    now = time.time() * 1000.0
    visible = not_visible = delayed = 0
    for m in self._messages:
        is_delayed = now < m.delayed_until
        if now > m.visible_at:
            visible += not is_delayed
        else:
            not_visible += 1
        delayed += is_delayed
    return visible, not_visible, delayed


_SqsQueue.messages = property(_visible_messages)
_SqsQueue.approximate_number_of_messages = property(lambda self: _counts(self)[0])
_SqsQueue.approximate_number_of_messages_not_visible = property(lambda self: _counts(self)[1])
_SqsQueue.approximate_number_of_messages_delayed = property(lambda self: _counts(self)[2])

_moto_modules = tuple(_moto_backends.list_of_moto_modules())
_moto_backends.list_of_moto_modules = lambda: _moto_modules


@_wraps(SQSBackend, "is_message_valid_based_on_retention_period")
def _retention(original, self, queue_name, message):
    # Only the retention period is needed, not every attribute of the queue.
    queue = self.get_queue(queue_name)
    return int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time()


_ATTRIBUTE_SCANS = {
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
}


class _LazyCounts(dict):
    """`Queue.attributes` for moto's own reads (validation): the three approximate counts
    are left out of the dict and computed only when a caller asks for one by name."""

    def __init__(self, queue, items):
        super().__init__(items)
        self._queue = queue

    def _count(self, key):
        visible, not_visible, delayed = _counts(self._queue)
        return {
            "ApproximateNumberOfMessages": visible,
            "ApproximateNumberOfMessagesNotVisible": not_visible,
            "ApproximateNumberOfMessagesDelayed": delayed,
        }[key]

    def __getitem__(self, key):
        if key in _ATTRIBUTE_SCANS and not dict.__contains__(self, key):
            return self._count(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in _ATTRIBUTE_SCANS and not dict.__contains__(self, key):
            return self._count(key)
        return super().get(key, default)


def _replace_everywhere(module, name, replacement):
    """Sets module.name, and every already imported module's binding of the same object
    (`from moto.core.utils import name`), to `replacement`; later imports get it too."""
    original = getattr(module, name)
    for m in list(sys.modules.values()):
        try:
            bound = getattr(m, name, None)  # a module's lazy __getattr__ may raise anything
        except Exception:  # noqa: BLE001
            continue
        if bound is original:
            setattr(m, name, replacement)


# Two pure functions moto calls on every request, memoised: the camelCase → snake_case
# conversion of a name (a character loop: 12 calls per SendMessage through
# `Queue.attributes` alone, and the largest self time in a profile of `bench route`), and
# the list of a response class's methods (an `inspect.getmembers` per request to look up
# its action). Every patch in this file is applied at import, before the first request.
import moto.core.utils as _moto_utils  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402

_replace_everywhere(
    _moto_utils, "camelcase_to_underscores", functools.lru_cache(maxsize=4096)(_moto_utils.camelcase_to_underscores)
)
_method_names = {}


def _method_names_from_class(clazz, _original=_moto_utils.method_names_from_class):
    names = _method_names.get(clazz)
    if names is None:
        names = _method_names[clazz] = frozenset(_original(clazz))
    return names


_replace_everywhere(_moto_utils, "method_names_from_class", _method_names_from_class)

_orig_queue_attributes = _SqsQueue.attributes.fget


def _queue_attributes(self):
    # moto's `Queue.attributes` (moto/sqs/models.py) without the three counts, which come
    # on demand; a GetQueueAttributes response still gets moto's own, counts included.
    if getattr(_attributes_for_response, "active", False):
        return _orig_queue_attributes(self)
    result = {}
    names = [a for a in self.BASE_ATTRIBUTES if a not in _ATTRIBUTE_SCANS]
    if self.fifo_queue:
        names += self.FIFO_ATTRIBUTES
    if self.kms_master_key_id:
        names += self.KMS_ATTRIBUTES
    for name in names:
        result[name] = getattr(self, camelcase_to_underscores(name))
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    for key, value in result.items():
        if isinstance(value, bool):
            result[key] = str(value).lower()
    return _LazyCounts(self, result)


_attributes_for_response = threading.local()
_SqsQueue.attributes = property(_queue_attributes)


@_wraps(SQSBackend, "get_queue_attributes")
def _get_queue_attributes(original, self, queue_name, attribute_names):
    _attributes_for_response.active = True
    try:
        return original(self, queue_name, attribute_names)
    finally:
        _attributes_for_response.active = False


# --------------------------------------------------------------------------------------
# DynamoDB responses without the shape walk (issue 11, routing throughput). moto 5.2 renders
# every response by walking botocore's output shape and, for each member of each attribute
# value of each item, trying every alias of its name (`XFormedAttributePicker`): a profile of
# `switchyard bench route` had it at ~80 % of a BatchGetItem of three items (7 of 8.7 ms)
# and the largest share of the emulator's time. The data-plane handlers already build their
# results in wire form (CamelCase keys, attribute values as {"S": ...}), so for those
# operations the result is dumped as JSON directly: bytes as base64 (how the serializer
# renders DynamoDB's blobs), `None` members and members outside the output shape dropped (as
# the serializer drops them). Anything else that is not plain JSON (datetimes, Decimals)
# falls back to moto's serializer, as do errors. `test_moto_serve.py` renders every
# operation both ways from the same result and compares.
# --------------------------------------------------------------------------------------
_DDB_DIRECT_JSON = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
    }
)
_DDB_JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}


def _wire_json(value):
    """`value` with None members dropped and DynamoType values in wire form; raises
    TypeError for anything json cannot render exactly as moto's serializer would."""
    if isinstance(value, dict):
        return {k: _wire_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_wire_json(v) for v in value]
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):  # B and BS values: DynamoDB's only blobs, base64 on the wire
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, DynamoType):
        return _wire_json(value.to_json())
    raise TypeError(type(value).__name__)


_ddb_output_members = {}  # action -> the member names of its output shape
_ddb_direct_json_count = {}  # action -> responses rendered directly (for the tests)


def _output_members(action):
    members = _ddb_output_members.get(action)
    if members is None:
        from moto.core.responses import get_service_model

        shape = get_service_model("dynamodb").operation_model(action).output_shape
        members = _ddb_output_members[action] = frozenset(shape.members)
    return members


@_wraps(DynamoHandler, "serialized")
def _ddb_serialized(original, self, action_result):
    result = action_result.result
    action = self._get_action()
    if isinstance(result, dict) and action in _DDB_DIRECT_JSON:
        members = _output_members(action)  # moto adds a few that are not (ConsumedCapacityUnits)
        try:
            body = json.dumps(_wire_json({k: v for k, v in result.items() if k in members}))
        except (TypeError, ValueError):
            return original(self, action_result)
        _ddb_direct_json_count[action] = _ddb_direct_json_count.get(action, 0) + 1
        headers = dict(_DDB_JSON_HEADERS)
        headers.update(self.response_headers)
        return 200, headers, body
    return original(self, action_result)


class _KeepAliveRequestHandler(MotoRequestHandler):
    """HTTP/1.1 with keep-alive, as AWS endpoints speak. werkzeug's development server
    sends `Connection: close` on every response whatever the protocol version (it cannot
    drain a request body it did not read), so each SDK call paid a TCP connect, a thread
    start, a 10 ms drain poll and a close: about two fifths of the emulator's samples in a
    profile of `switchyard bench route`. Here a request with a Content-Length (every AWS SDK
    request) is read whole before the application runs, so the connection is always at the
    next request when the response has been written, and the response goes out in one
    write with its Content-Length. Chunked request bodies (none of our clients send them)
    keep werkzeug's own handling, which closes the connection."""

    protocol_version = "HTTP/1.1"

    def run_wsgi(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            return super().run_wsgi()
        # (`Expect: 100-continue` was answered by http.server's parse_request already.)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._respond("400 Bad Request", [("Content-Type", "text/plain")], b"bad Content-Length\n")
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return
        started = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
            return chunks.append

        chunks = []
        try:
            self.environ = environ = self.make_environ()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(length)
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            status, headers = started
            payload = b"".join(chunks)
        except Exception:
            traceback.print_exc()
            self.close_connection = True
            status, headers, payload = "500 Internal Server Error", [], b"internal error in the emulator\n"
        self._respond(status, headers, payload)

    def _respond(self, status, headers, body):
        """One write: status line, headers, body. No body for HEAD, 1xx, 204 and 304
        (RFC 9110 §6.4.1; clients read none whatever Content-Length says); a HEAD keeps the
        Content-Length the application gave (the size of what a GET would return)."""
        code = int(status.split(None, 1)[0])
        bodiless = self.command == "HEAD" or code < 200 or code in (204, 304)
        lines = [f"HTTP/1.1 {status}\r\n"]
        for key, value in headers:
            lower = key.lower()
            if lower in ("transfer-encoding", "connection") or (lower == "content-length" and self.command != "HEAD"):
                continue
            lines.append(f"{key}: {value}\r\n")
        if not bodiless:
            lines.append(f"Content-Length: {len(body)}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1", "replace")
        self.wfile.write(head if bodiless else head + body)
        if code >= 500:
            self.log_error("%s %s -> %s", self.command, self.path, status)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    # The emulator's heap is mostly long-lived items and messages; with the default
    # thresholds the cyclic collector re-walks all of it every few thousand allocations,
    # a cost that grows with the tables and queues. Start-up objects are frozen out of it
    # and collections of the young generation happen ten times less often.
    gc.freeze()
    gc.set_threshold(7000, 10, 10)
    run_simple(host, port, SerialiseDynamoDB(app), threaded=True, request_handler=_KeepAliveRequestHandler)


if __name__ == "__main__":
    main()
