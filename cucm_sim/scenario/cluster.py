"""What a user writes about a CUCM cluster: its nodes, its phones' pools and CM groups, how phones fail over.

A cluster (`Cluster`) is one or more named CUCM nodes on one clock.  Each node takes the scenario's
top-level `node`, `throttling` and `load.background` unless it overrides them (`ClusterNode`; an override
sets only the keys it names).  The phones come in pools (`DevicePool`): a count, an ordered CM group
(primary, secondary, tertiary), and their own keepalive interval and chatty phones.  `Failover` says how
phones notice that their node is gone and when they go back to their primary.  DOMAIN.md section 4 gives
what public sources say; every timing here is an input, as none is documented exactly.  `schema.Scenario`
checks the names these sections refer to.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from cucm_sim.rules.throttling import ThrottlingParams, WholeNumber
from cucm_sim.scenario.base import PartName, Section, problem_at
from cucm_sim.scenario.node import BackgroundSource, ChattyDevices, NodeParams

MAX_NODES = 8
"""Call-processing nodes of one cluster (Cisco's limit for subscribers running the CallManager service)."""
MAX_CM_GROUP = 3
"""Nodes in a CUCM group: primary, secondary, tertiary."""
MAX_PHONES = 200_000


class NodeLoad(Section):
    """A cluster node's own background signals (calls follow the phones, so they are not a node's)."""

    background: list[BackgroundSource] = Field(
        max_length=32, description="Background Poisson signal sources of this node, instead of load.background."
    )


class ClusterNode(Section):
    """One CUCM node of the cluster: its name, and what it does differently from the top-level sections."""

    name: PartName = Field(description="The node's name (cm1, sub2, ...): alarms, timeline rows and metrics "
                           "(nodes.NAME.*) carry it.")
    node: NodeParams | None = Field(
        None, description="Keys of the top-level `node` section this node sets differently (e.g. "
        "{capacity_factor: 2} for a faster server); the keys it does not name come from the top level.",
    )
    throttling: ThrottlingParams | None = Field(
        None, description="Keys of the top-level `throttling` section this node sets differently; the keys it "
        "does not name come from the top level.",
    )
    load: NodeLoad | None = Field(None, description="This node's own background load ({background: [...]}).")


class Failover(Section):
    """How phones leave a node that is gone, and come back to their primary."""

    detection: Literal["tcp_close", "keepalive"] = Field(
        "tcp_close",
        description="tcp_close: the restart closes the phones' TCP connections and each notices at once (a "
        "graceful stop); keepalive: each notices when `missed_keepalives` of its own keepalives in a row go "
        "unanswered (a hung process; about 90 s with 3 x 30 s, per Cisco's SRST FAQ).",
    )
    missed_keepalives: WholeNumber = Field(
        3, ge=1, le=20, description="Unanswered keepalives after which a phone gives its node up (detection: "
        "keepalive). Field reports say 1 to 3.",
    )
    rehome_delay_s: float = Field(
        120, ge=0, le=86_400,
        description="Connection Monitor Duration: a phone on a secondary that sees its primary back waits this "
        "long before it goes back (s). 120 s is often quoted; confirmed for SRST fallback only.",
    )
    secondary_keepalive_interval_s: float = Field(
        60, ge=1, le=3600,
        description="Station2ndKeepAliveInterval: how often a phone on a secondary checks its primary (s); it "
        "sees the primary back at its first check after CallManagerOnline. Sources say 60 or 180 s.",
    )


class Cluster(Section):
    """A CUCM cluster: its call-processing nodes and the failover behaviour of its phones."""

    nodes: list[ClusterNode] = Field(min_length=1, max_length=MAX_NODES, description="The nodes, by name.")
    failover: Failover = Field(default_factory=Failover, description="How phones fail over and rehome.")

    @model_validator(mode="after")
    def _names_differ(self) -> Self:
        seen: set[str] = set()
        for k, node in enumerate(self.nodes):
            if node.name in seen:
                raise problem_at(f"nodes.{k}.name", f"{node.name!r} is already the name of another node")
            seen.add(node.name)
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """The nodes' names, in order."""
        return tuple(node.name for node in self.nodes)


class DevicePool(Section):
    """Phones that share a CM group and behave alike (a floor, a site, a device pool in CUCM's terms)."""

    name: PartName = Field(description="The pool's name.")
    count: WholeNumber = Field(ge=0, le=MAX_PHONES, description="Phones in the pool; 0 allowed.")
    cm_group: list[PartName] = Field(
        min_length=1, max_length=MAX_CM_GROUP,
        description="The pool's CUCM group: node names in order (primary, secondary, tertiary). Phones register "
        "with the first node that is up.",
    )
    keepalive_interval_s: float | None = Field(
        None, ge=1, le=3600,
        description="Station KeepAlive Interval of these phones (s); absent: devices.keepalive_interval_s.",
    )
    chatty: list[ChattyDevices] = Field(
        default_factory=list, max_length=32, description="Misbehaving phones of this pool (taken from its count)."
    )

    @model_validator(mode="after")
    def _fits(self) -> Self:
        for k, name in enumerate(self.cm_group):
            if name in self.cm_group[:k]:
                raise problem_at(f"cm_group.{k}", f"{name!r} is already in the group")
        chatty_total = sum(group.count for group in self.chatty)
        if chatty_total > self.count:
            raise problem_at("chatty", f"chatty phones ({chatty_total}) exceed the pool's count ({self.count})")
        return self
