"""How a worker joins its Manager: what it says of itself, registering with the secret, signing on.

A Manager that no longer knows the stored credentials (its store was restored or started fresh) gets a new
registration when a registration secret was given; without one the worker stops with a message. An address that
answers without a worker API (a Server's, say) stops it too: retrying would never help.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from services.localfarm.layout import DEFAULT_SERVER_PORT
from services.protocol import platforms
from services.protocol.service_probe import Service, which_service
from services.protocol.worker_api import RegisterRequest, SignOnAnswer, SignOnRequest
from services.protocol.worker_client import ManagerError, Unauthorized, WorkerClient
from services.worker import capabilities, credentials
from services.worker.agent_config import AgentConfig, FatalError, SupersededError
from services.worker.buffer import Backoff
from services.worker.runners import available_task_types, prepare_checks
from services.worker.software import software_versions

log = logging.getLogger("tablao.worker")
MANAGER_PORT = DEFAULT_SERVER_PORT + 1  # a Manager's default (services/manager/config.py)


async def sign_on_request(cfg: AgentConfig) -> SignOnRequest:
    """What the worker tells the Manager at sign-on: the task types whose programs it has, its software."""
    prepare_checks()
    programs, versions = cfg.programs, await software_versions(cfg.programs)
    offered = available_task_types(programs)
    if cfg.task_types is not None:
        missing = [t for t in cfg.task_types if t not in offered]
        for t in missing:
            log.warning("task type %r needs a program this worker does not have; not offered", t)
        offered = [t for t in cfg.task_types if t in offered]
    if not offered:
        raise FatalError("this worker can run none of the requested task types")
    return SignOnRequest(
        name=cfg.name,
        platform=platforms.current(),
        task_types=offered,
        tags=cfg.tags,
        software=versions,
        can_restart=True,
        capabilities=capabilities.gather(cfg.host_attributes, cfg.host_amounts),
    )


async def register(cfg: AgentConfig, client: WorkerClient) -> credentials.Credentials:
    """Register with the registration secret; the credentials are stored for the next start."""
    if not cfg.registration_secret:
        raise FatalError(
            "this worker is not registered yet and no registration secret was given "
            "(--registration-secret-file or TABLAO_WORKER_REGISTRATION_SECRET)"
        )
    try:
        answer = await client.register(
            RegisterRequest(registration_secret=cfg.registration_secret, name=cfg.name, platform=platforms.current())
        )
    except Unauthorized as exc:
        raise FatalError(f"the Manager refused the registration secret: {exc.detail}") from exc
    creds = credentials.Credentials(cfg.manager_url, answer.worker_id, answer.secret)
    try:
        credentials.save(cfg.data_dir, creds, in_keyring=cfg.credentials_in_keyring)
    except ValueError as exc:
        raise FatalError(str(exc)) from exc
    log.info("registered at %s as worker %s", cfg.manager_url, creds.worker_id)
    return creds


async def not_a_manager(cfg: AgentConfig) -> str | None:
    """Why --manager is wrong, after a 404 on the worker API; None when a Manager does answer there (retry)."""
    service = await which_service(cfg.manager_url, ca_bundle=cfg.ca_bundle)
    if service is Service.MANAGER:
        return None
    what = "it is a Tablao Server" if service is Service.SERVER else "it has no worker API"
    return (
        f"{cfg.manager_url} is not a Tablao Manager ({what}): give a Manager's address with --manager "
        f"(a Manager listens on port {MANAGER_PORT} unless told otherwise)"
    )


async def sign_on(
    cfg: AgentConfig, client: WorkerClient, body: SignOnRequest, backoff: Backoff
) -> tuple[credentials.Credentials, SignOnAnswer]:
    """Sign on with the stored credentials (registering first when there are none), retrying while the
    Manager is unreachable; the client carries the credentials afterwards."""
    try:
        creds = credentials.load(cfg.data_dir, cfg.manager_url, in_keyring=cfg.credentials_in_keyring)
    except ValueError as exc:
        raise FatalError(str(exc)) from exc
    if creds is not None and credentials.superseded(cfg.data_dir, creds.worker_id):
        creds_file, marker = cfg.data_dir / credentials.FILE_NAME, cfg.data_dir / credentials.SUPERSEDED_FILE
        raise SupersededError(
            f"another process signed on as worker {creds.worker_id} after this one: two machines cannot share "
            f"one worker's identity. On the machine copied from the other, delete {creds_file} (or the tray's "
            f"keyring entry) so that it registers anew; to take the identity back here instead, delete {marker}"
        )
    while True:
        try:
            if creds is None:
                creds = await register(cfg, client)
            client.set_credentials(creds.worker_id, creds.secret)
            answer = await client.sign_on(body)
            backoff.reset()
            return creds, answer
        except Unauthorized:
            if creds is None or not cfg.registration_secret:
                raise FatalError(
                    "the Manager does not know this worker and no registration secret "
                    "was given (--registration-secret-file or "
                    "TABLAO_WORKER_REGISTRATION_SECRET)"
                ) from None
            log.warning("the Manager does not know worker %s any more; registering again", creds.worker_id)
            creds = None
        except (httpx.TransportError, ManagerError) as exc:
            if isinstance(exc, ManagerError) and exc.status == 404 and (why := await not_a_manager(cfg)):
                raise FatalError(why) from None
            delay = backoff.next_delay()
            log.warning("cannot sign on at %s (%s); retrying in %.1f s", cfg.manager_url, exc, delay)
            await asyncio.sleep(delay)
