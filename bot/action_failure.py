"""A custom action that fails answers the customer with an apology instead of silence.

Rasa 3.6 has no hook for a failed custom action: when the action server is down, errors or
hangs, `MessageProcessor._run_action` logs the exception, drops the action's events and the
customer hears nothing. `install()` wraps `RemoteAction.run` in the Rasa server process so that
such a failure returns `utter_service_unavailable` as a `BotUttered` event instead; the processor
then sends it to the output channel and logs it on the tracker like any response of Rasa's own
(`ActionBotResponse` works the same way). A failed `action_session_start` falls back to Rasa's
built-in session start, so the conversation still begins. A form's validation rejection
(`ActionExecutionRejection`) is not a failure and propagates unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable, Callable

from jsonschema import ValidationError
from rasa.core.actions.action import (
    ActionExecutionRejection,
    ActionSessionStart,
    RemoteAction,
    create_bot_utterance,
)
from rasa.core.channels.channel import CollectingOutputChannel, OutputChannel
from rasa.core.nlg import NaturalLanguageGenerator
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException

logger = logging.getLogger(__name__)

APOLOGY = "utter_service_unavailable"
TIMEOUT_ENV = "CAREBOT_ACTION_TIMEOUT"
DEFAULT_TIMEOUT_S = 20.0
_INSTALLED = "_carebot_action_failure"
# What the action server can do to a call: refuse or fail it (Rasa raises RasaException), hang
# (our timeout, or aiohttp's), or answer with a body that is not an action result.
FAILURES = (RasaException, asyncio.TimeoutError, ValidationError)

Run = Callable[
    [RemoteAction, OutputChannel, NaturalLanguageGenerator, DialogueStateTracker, Domain],
    Awaitable[list[Event]],
]


def install() -> None:
    """Guards every custom action of this process; installing again changes nothing."""
    if getattr(RemoteAction.run, _INSTALLED, False):
        return
    RemoteAction.run = _guarded(RemoteAction.run)


def action_timeout() -> float:
    """Seconds a custom action may take: CAREBOT_ACTION_TIMEOUT, default 20."""
    try:
        seconds = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return seconds if seconds > 0 else DEFAULT_TIMEOUT_S


def _guarded(run: Run) -> Run:
    @functools.wraps(run)
    async def guarded_run(
        action: RemoteAction,
        output_channel: OutputChannel,
        nlg: NaturalLanguageGenerator,
        tracker: DialogueStateTracker,
        domain: Domain,
    ) -> list[Event]:
        timeout = action_timeout()
        if output_channel is None:
            return await _run_without_channel(run, action, nlg, tracker, domain, timeout)
        try:
            call = run(action, output_channel, nlg, tracker, domain)
            return await asyncio.wait_for(call, timeout)
        except ActionExecutionRejection:
            raise  # a form rejecting its input: the policies predict something else
        except FAILURES as error:
            reason = failure_reason(error, timeout)
            return await _recover(action.name(), reason, output_channel, nlg, tracker, domain)

    setattr(guarded_run, _INSTALLED, True)
    return guarded_run


async def _run_without_channel(
    run: Run,
    action: RemoteAction,
    nlg: NaturalLanguageGenerator,
    tracker: DialogueStateTracker,
    domain: Domain,
    timeout: float,
) -> list[Event]:
    """Rasa 3.6 starts the session of a conversation that begins with `trigger_intent` without
    an output channel, and would then crash sending whatever the session start says (a
    greeting). With nobody to say it to, the action's other events are kept and its messages
    dropped."""
    try:
        events = await asyncio.wait_for(
            run(action, CollectingOutputChannel(), nlg, tracker, domain), timeout
        )
    except FAILURES as error:
        reason = failure_reason(error, timeout)
        events = await _recover(
            action.name(), reason, CollectingOutputChannel(), nlg, tracker, domain
        )
    return [event for event in events if not isinstance(event, BotUttered)]


def failure_reason(error: BaseException, timeout: float) -> str:
    """One line for the log: Rasa's message, plus the HTTP error it wraps, if any."""
    if isinstance(error, asyncio.TimeoutError):
        return f"no answer within {timeout:g} s"
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if error.__cause__ is not None:
        reason += f" ({error.__cause__})"
    return reason[:500]


async def _recover(
    name: str,
    reason: str,
    output_channel: OutputChannel,
    nlg: NaturalLanguageGenerator,
    tracker: DialogueStateTracker,
    domain: Domain,
) -> list[Event]:
    if name == ACTION_SESSION_START_NAME:
        logger.error("action %s failed: %s; started the session with Rasa's own", name, reason)
        return await ActionSessionStart().run(output_channel, nlg, tracker, domain)
    logger.error("action %s failed: %s; replied with %s", name, reason, APOLOGY)
    return await apologise(output_channel, nlg, tracker)


async def apologise(
    output_channel: OutputChannel, nlg: NaturalLanguageGenerator, tracker: DialogueStateTracker
) -> list[Event]:
    """The apology as a BotUttered event, which Rasa's processor sends to the channel."""
    message = await nlg.generate(APOLOGY, tracker, output_channel.name())
    if message is None:
        logger.error("the domain has no response %s: the customer gets no answer", APOLOGY)
        return []
    message["utter_action"] = APOLOGY
    return [create_bot_utterance(message)]
