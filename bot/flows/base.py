"""What a flow is made of, the registry of flows, and the turn a step is handed.

A `Flow` is one thing a person can do in the chat (send money, change the PIN…): its
menu entry, its steps, the command that jumps into it (`SEND 12.50 USD 0881234567`) and
what CANCEL says in it. A `Step` is one question the flow asks: its stored name (the
conversation's `state`), what it says when it asks again, what it does with the answer,
and whether the answer is a secret (masked in the transcript) or a number (an amount, a
phone, a code: kept readable). The engine (bot/dialog.py) reads only these declarations:
it has no list of states of its own.

A `Turn` is one message being answered: the conversation, the person, the working values
of the flow they are in, and the two ways of moving on, named for what they do:
`go(step, **values)` starts a step with exactly these values, `ask(step)` / `next(step)`
move on within the flow keeping them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot import copy, services
from core.crypto import Sealer
from core.db import UnitOfWork
from core.errors import InvalidInput, SoxaraError
from core.messaging import conversations
from core.wallets import wallets

# The engine's own resting places: no flow is under way there.
NEW = "new"                  # never logged in here
LOGGED_OUT = "logged_out"    # known, session ended
MENU = "menu"
RESTING = frozenset({NEW, LOGGED_OUT, MENU})

# A login in the chat lasts this long after the person's last message.
SESSION_IDLE = timedelta(minutes=30)


@dataclass(frozen=True)
class MenuEntry:
    """A line of the menu. `order` places it (its number is its place); `words` are what
    else chooses it ("SEND", "CHANGE PIN"), upper case."""

    order: int
    label: str
    words: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Step:
    """One question of a flow. `name` is stored as the conversation's state, so it is
    unique across flows and never renamed without a data migration."""

    name: str
    handle: Callable[[Turn, str], None]
    prompt: Callable[[Turn], str]
    secret: bool = False  # the answer is a PIN or a code: the transcript keeps "••••"
    number: bool = False  # a bare number is an ordinary answer here (amount, phone, code)
    yes_no: bool = False  # a yes/no question: NO answers it (elsewhere NO leaves, like CANCEL)


@dataclass(frozen=True)
class Command:
    """A shortcut typed at any step (`SEND 12.50 USD 0881234567`, `CLAIM K7M2PQ9X`):
    `read` parses a message (None: not this command), `run` carries it out."""

    read: Callable[[str], Any]
    run: Callable[[Turn, Any], None]


@dataclass
class Flow:
    """One thing a person can do. `start` is what choosing it from the menu (or
    `start_flow`) does; by default it asks the first step with the values given."""

    name: str
    steps: list[Step] = field(default_factory=list)
    menu: MenuEntry | None = None
    # What CANCEL says in the middle of it ("Nothing was sent"); a function of the turn
    # where it depends on the step.
    cancel: str | Callable[[Turn], str] | None = None
    command: Command | None = None
    begin: Callable[..., None] | None = None
    # Free text at the menu this flow takes, read into the values it starts with (an amount
    # with its currency, `5 usd`, starts a send of it); None: not for this flow.
    at_menu: Callable[[str], dict | None] | None = None

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def cancelled(self, turn: Turn) -> str:
        if self.cancel is None:
            return copy.NOTHING_TO_CANCEL
        return self.cancel if isinstance(self.cancel, str) else self.cancel(turn)

    def start(self, turn: Turn, **values) -> None:
        if self.begin is not None:
            self.begin(turn, **values)
        else:
            turn.go(self.steps[0], **values)
            turn.say(self.steps[0].prompt(turn))


class Registry:
    """The flows the chat offers; the one place the menu's numbers and words come from."""

    def __init__(self) -> None:
        self.flows: dict[str, Flow] = {}
        self._steps: dict[str, tuple[Flow, Step]] = {}

    def register(self, flow: Flow) -> Flow:
        if flow.name in self.flows:
            raise ValueError(f"a flow named {flow.name!r} is registered already")
        for step in flow.steps:
            if step.name in self._steps or step.name in RESTING:
                raise ValueError(f"step {step.name!r} of {flow.name!r} is taken")
        if flow.menu and any(f.menu and f.menu.order == flow.menu.order for f in self.flows.values()):
            raise ValueError(f"menu place {flow.menu.order} is taken")
        self.flows[flow.name] = flow
        for step in flow.steps:
            self._steps[step.name] = (flow, step)
        return flow

    def unregister(self, name: str) -> None:
        flow = self.flows.pop(name)
        for step in flow.steps:
            del self._steps[step.name]

    def flow(self, name: str) -> Flow:
        return self.flows[name]

    def step(self, state: str) -> Step | None:
        found = self._steps.get(state)
        return found[1] if found else None

    def flow_of(self, state: str) -> Flow | None:
        found = self._steps.get(state)
        return found[0] if found else None

    def commands(self) -> list[Command]:
        return [f.command for f in self.flows.values() if f.command is not None]

    def command_in(self, text: str) -> tuple[Command, Any] | None:
        """The shortcut this message is, with what it said, if it is one."""
        for command in self.commands():
            parsed = command.read(text)
            if parsed is not None:
                return command, parsed
        return None

    def menu(self) -> list[Flow]:
        """The flows on the menu, in menu order: the first is 1."""
        return sorted((f for f in self.flows.values() if f.menu), key=lambda f: f.menu.order)  # type: ignore[union-attr]

    def menu_number(self, name: str) -> int:
        return [f.name for f in self.menu()].index(name) + 1

    def menu_text(self) -> str:
        return copy.menu([f.menu.label for f in self.menu() if f.menu])

    def menu_choice(self, text: str) -> Flow | None:
        """The flow a message at the menu chooses: its number or one of its words."""
        t = text.strip().strip(".").upper()
        for number, f in enumerate(self.menu(), start=1):
            if t == str(number) or (f.menu and t in f.menu.words):
                return f
        return None

    def understood_at_menu(self, text: str) -> tuple[Flow, dict] | None:
        """The flow that takes this free text at the menu (`Flow.at_menu`), with the values
        it read."""
        for f in self.flows.values():
            values = f.at_menu(text) if f.at_menu is not None else None
            if values is not None:
                return f, values
        return None


registry = Registry()


@dataclass
class Turn:
    """One message being answered (or a flow being started from outside), in the
    caller's transaction."""

    uow: UnitOfWork
    rt: Any
    convo: conversations.Conversation
    now: datetime
    profile_name: str | None = None
    code_verdict: services.CodeVerdict | None = None  # the login code's, judged before
    values: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = self.convo.values
        self.phone = self.convo.phone_number
        self.livemode = self.rt.settings.user_mode_live

    @property
    def state(self) -> str:
        return self.convo.state

    @property
    def user_id(self) -> str | None:
        """The person, while their login in this chat lasts."""
        return self.convo.user_id if self.convo.logged_in(self.now) else None

    @property
    def logged_in_user_id(self) -> str:
        """The person, in a step behind the login gate: the engine lets no message reach
        one without a login, so asking where there is none is a bug."""
        user_id = self.user_id
        if user_id is None:
            raise RuntimeError(f"step {self.state!r} needs a login and the chat has none")
        return user_id

    def say(self, text: str) -> None:
        services.reply(self.uow, self.rt, self.phone, text)

    # --- moving: two meanings, two names ------------------------------------------------

    def go(self, step: Step | str, **values) -> None:
        """Start `step` with exactly these working values (whatever the flow held is dropped)."""
        self.convo.state = step if isinstance(step, str) else step.name
        self.values = dict(values)

    def next(self, step: Step) -> None:
        """Move on to `step` in the same flow, keeping its working values."""
        self.convo.state = step.name

    def ask(self, step: Step) -> None:
        """`next(step)`, and say its question."""
        self.next(step)
        self.say(step.prompt(self))

    def keep(self, **values) -> None:
        self.values.update(values)

    def home(self) -> None:
        """Back to the menu, the flow's values dropped (nothing is said)."""
        self.go(MENU)

    def rest_state(self) -> str:
        if self.user_id:
            return MENU
        return LOGGED_OUT if self.convo.user_id else NEW

    def prompt(self) -> None:
        """Say again what the current step is waiting for."""
        step = registry.step(self.state)
        if step is not None:
            self.say(step.prompt(self))
        elif self.state in (NEW, LOGGED_OUT) and not self.user_id:
            self.say(copy.HELP)
        else:
            self.say(registry.menu_text())

    def finish(self, *, from_person: bool = True) -> None:
        """Write the turn's outcome to the conversation row."""
        self.convo.set_values(self.values)
        self.convo.updated_at = self.now
        # The flow's idle clock (FLOW_IDLE) runs from here, whoever moved it.
        self.convo.last_inbound_at = self.now
        if from_person and self.user_id:
            # Every message keeps the login alive.
            self.convo.session_expires_at = self.now + SESSION_IDLE

    # --- what several flows need --------------------------------------------------------

    def menu(self) -> str:
        return registry.menu_text()

    def balance_of(self, currency: str) -> int:
        w = wallets.find_wallet(self.uow, wallets.USER, self.logged_in_user_id, currency, self.livemode)
        return w.balance if w is not None else 0

    def seal(self, secret: str) -> str:
        return Sealer(self.rt.secret_key).seal(secret.encode()).decode()

    def unseal(self, token: str | None) -> str | None:
        if not token:
            return None
        raw = Sealer(self.rt.secret_key).open(token.encode())
        return raw.decode() if raw is not None else None

    def refusal(self, e: SoxaraError) -> str:
        """What to say when core refused an action."""
        if isinstance(e, InvalidInput) and "yourself" in e.message:
            return copy.NUMBER_SELF
        if e.code in ("UPSTREAM_ERROR", "SERVICE_UNAVAILABLE"):
            return copy.UNAVAILABLE
        return copy.refused(e.message)
