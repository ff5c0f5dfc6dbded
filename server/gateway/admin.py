"""AdminService: the operator's levers — tokens, enroll secrets, devices, dictionaries.

Secrets are generated here and returned once; the store keeps their SHA-256. A
revocation takes effect at once on this replica (its identity cache is dropped and the
device's open streams end) and within the cache TTL on the others.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc

from probelink.server.auth import credentials, roles
from probelink.server.auth.authenticator import Caller
from probelink.server.clock import now_us
from probelink.server.diagnosis.service import Diagnoses, parse_purchase
from probelink.server.errors import InvalidArgument, NotFound, Unauthenticated
from probelink.server.gateway.calls import Guard, rpc
from probelink.server.gateway.convert import (
    device_info,
    dictionary_message,
    role_name,
    secret_info,
    token_info,
)
from probelink.server.gateway.hub import Hub
from probelink.server.ingest.training import DictionaryTrainer
from probelink.server.store.async_store import AsyncStore
from probelink.server.store.base import EnrollSecretRecord, TokenRecord, WarrantyRecord
from probelink.v1 import admin_pb2, admin_pb2_grpc, advisory_pb2

_SERVICE = "probelink.v1.AdminService/"
_MAX_LABEL = 200


class Admin(admin_pb2_grpc.AdminServiceServicer):
    def __init__(
        self,
        store: AsyncStore,
        guard: Guard,
        hub: Hub,
        trainer: DictionaryTrainer,
        diagnoses: Diagnoses,
    ) -> None:
        self.diagnoses = diagnoses
        self.store = store
        self.guard = guard
        self.hub = hub
        self.trainer = trainer

    @rpc(_SERVICE + "CreateToken")
    async def CreateToken(
        self,
        request: admin_pb2.CreateTokenRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.CreateTokenResponse:
        role = role_name(request.role)
        if role == roles.DEVICE:
            raise InvalidArgument(
                "devices get their credential by enrolling, not from a token: choose "
                "customer, technician, engineer or admin"
            )
        label = _label(request.label)
        device_id = request.device_id.strip() or None
        store = self.store.store
        if role == roles.CUSTOMER:
            if device_id is None:
                raise InvalidArgument(
                    "a customer token reads one device's reports: give its device id "
                    "(--device; `probelink-server device list` shows them)"
                )
            if await self.store.read(store.get_device, device_id) is None:
                raise NotFound(f"no device {device_id} is enrolled on this server")
        elif device_id is not None:
            raise InvalidArgument(f"only a customer token is tied to a device, not a {role}'s")
        secret = credentials.new_secret(credentials.API_TOKEN)
        record = TokenRecord(
            token_id=credentials.new_id("tok"),
            token_hash=credentials.hash_secret(secret),
            role=role,
            label=label,
            device_id=device_id,
            created_at_us=now_us(),
        )
        await self.store.write(store.add_token, record)
        return admin_pb2.CreateTokenResponse(info=token_info(record), token=secret)

    @rpc(_SERVICE + "RevokeToken")
    async def RevokeToken(
        self,
        request: admin_pb2.RevokeTokenRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.RevokeTokenResponse:
        token_id = _required(request.token_id, "token_id", "`token list` shows the ids")
        record = await self.store.write(self.store.store.revoke_token, token_id, now_us())
        if record is None:
            raise NotFound(f"no token {token_id} on this server")
        self.guard.authenticator.forget()
        return admin_pb2.RevokeTokenResponse(info=token_info(record))

    @rpc(_SERVICE + "ListTokens")
    async def ListTokens(
        self,
        request: admin_pb2.ListTokensRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.ListTokensResponse:
        records = await self.store.read(self.store.store.list_tokens)
        return admin_pb2.ListTokensResponse(tokens=[token_info(r) for r in records])

    @rpc(_SERVICE + "CreateEnrollSecret")
    async def CreateEnrollSecret(
        self,
        request: admin_pb2.CreateEnrollSecretRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.CreateEnrollSecretResponse:
        secret = credentials.new_secret(credentials.ENROLL_SECRET)
        record = EnrollSecretRecord(
            secret_id=credentials.new_id("sec"),
            secret_hash=credentials.hash_secret(secret),
            label=_label(request.label),
            created_at_us=now_us(),
        )
        await self.store.write(self.store.store.add_enroll_secret, record)
        return admin_pb2.CreateEnrollSecretResponse(info=secret_info(record), secret=secret)

    @rpc(_SERVICE + "RevokeEnrollSecret")
    async def RevokeEnrollSecret(
        self,
        request: admin_pb2.RevokeEnrollSecretRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.RevokeEnrollSecretResponse:
        secret_id = _required(request.secret_id, "secret_id", "`secret list` shows the ids")
        record = await self.store.write(self.store.store.revoke_enroll_secret, secret_id, now_us())
        if record is None:
            raise NotFound(f"no enroll secret {secret_id} on this server")
        return admin_pb2.RevokeEnrollSecretResponse(info=secret_info(record))

    @rpc(_SERVICE + "ListEnrollSecrets")
    async def ListEnrollSecrets(
        self,
        request: admin_pb2.ListEnrollSecretsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.ListEnrollSecretsResponse:
        records = await self.store.read(self.store.store.list_enroll_secrets)
        return admin_pb2.ListEnrollSecretsResponse(secrets=[secret_info(r) for r in records])

    @rpc(_SERVICE + "ListDevices")
    async def ListDevices(
        self,
        request: admin_pb2.ListDevicesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.ListDevicesResponse:
        records = await self.store.read(self.store.store.list_devices)
        return admin_pb2.ListDevicesResponse(devices=[device_info(r) for r in records])

    @rpc(_SERVICE + "RevokeDevice")
    async def RevokeDevice(
        self,
        request: admin_pb2.RevokeDeviceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.RevokeDeviceResponse:
        device_id = _required(request.device_id, "device_id", "`device list` shows the ids")
        try:
            uuid.UUID(device_id)
        except ValueError:
            raise InvalidArgument(f"{device_id!r} is not a device id (a UUID)") from None
        record = await self.store.write(self.store.store.revoke_device, device_id, now_us())
        if record is None:
            raise NotFound(f"no device {device_id} is enrolled on this server")
        self.guard.authenticator.forget()
        self.hub.end_device(
            device_id,
            Unauthenticated(f"device {device_id} was revoked by an admin; enroll again"),
        )
        return admin_pb2.RevokeDeviceResponse(info=device_info(record))

    @rpc(_SERVICE + "TrainDictionary")
    async def TrainDictionary(
        self,
        request: admin_pb2.TrainDictionaryRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.TrainDictionaryResponse:
        record = await self.trainer.train(request.sample_limit)
        return admin_pb2.TrainDictionaryResponse(dictionary=dictionary_message(record))

    @rpc(_SERVICE + "SetDeviceWarranty")
    async def SetDeviceWarranty(
        self,
        request: admin_pb2.SetDeviceWarrantyRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Caller,
    ) -> admin_pb2.SetDeviceWarrantyResponse:
        device_id = _required(request.device_id, "device_id", "`device list` shows the ids")
        given = request.warranty
        if not given.purchase_date or not given.region:
            raise InvalidArgument(
                "a warranty record needs the purchase date (YYYY-MM-DD) and the region "
                f"({', '.join(sorted(self.diagnoses.diagnoser.warranty.regions))})"
            )
        facts = parse_purchase(
            given.purchase_date,
            given.region,
            given.plans,
            given.exclusions,
            self.diagnoses.diagnoser,
            "device",
        )
        if await self.store.read(self.store.store.get_device, device_id) is None:
            raise NotFound(f"no device {device_id} is enrolled on this server")
        assert facts.purchase_date is not None and facts.region is not None
        record = WarrantyRecord(
            device_id,
            facts.purchase_date.isoformat(),
            facts.region,
            facts.plans,
            facts.exclusions,
            now_us(),
        )
        await self.store.write(self.store.store.set_warranty, record)
        # What the customer reads now (check --upload, GetDiagnosis) is judged by it.
        await self.diagnoses.refresh(device_id)
        return admin_pb2.SetDeviceWarrantyResponse(
            warranty=advisory_pb2.WarrantyFacts(
                purchase_date=record.purchase_date,
                region=record.region,
                plans=record.plans,
                exclusions=record.exclusions,
            )
        )


def _label(text: str) -> str:
    label = text.strip()
    if len(label) > _MAX_LABEL:
        raise InvalidArgument(f"label is longer than {_MAX_LABEL} characters")
    return label


def _required(value: str, name: str, hint: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument(f"{name} is empty: {hint}")
    return value
