"""janus.nodes.JanusPool: which node a new meeting goes to."""

from __future__ import annotations

import asyncio

import pytest

from visio.janus.nodes import JanusPool, NoJanusNode


class StubConnection:
    def __init__(self, connected: bool) -> None:
        self.connected = connected


def pool_of(*nodes: tuple[bool, int, int]) -> JanusPool:
    """A pool whose nodes are (up, participants, meetings)."""
    pool = JanusPool([f"ws://10.0.0.{i}:8188" for i in range(len(nodes))], "s", "k")
    for node, (up, participants, meetings) in zip(pool.nodes, nodes, strict=True):
        node.connection = StubConnection(up)  # type: ignore[assignment]
        node.participants = participants
        node.meetings = meetings
    return pool


def test_nodes_share_the_secrets():
    pool = JanusPool(["ws://a", "ws://b"], "secret", "key")
    assert [(n.url, n.api_secret, n.admin_key) for n in pool.nodes] == [
        ("ws://a", "secret", "key"),
        ("ws://b", "secret", "key"),
    ]


def test_a_node_without_connection_is_down():
    assert not JanusPool(["ws://a"], "", "").nodes[0].up


def test_pick_takes_the_node_with_fewest_participants():
    pool = pool_of((True, 5, 1), (True, 2, 3), (True, 9, 0))
    assert pool.pick() is pool.nodes[1]


def test_pick_breaks_ties_on_fewest_meetings():
    pool = pool_of((True, 4, 2), (True, 4, 1), (True, 4, 3))
    assert pool.pick() is pool.nodes[1]


def test_pick_skips_nodes_that_are_down():
    pool = pool_of((False, 0, 0), (True, 50, 9), (False, 0, 0))
    assert pool.pick() is pool.nodes[1]


def test_pick_without_any_node_up_raises():
    pool = pool_of((False, 0, 0), (False, 0, 0))
    with pytest.raises(NoJanusNode):
        pool.pick()
    empty = JanusPool([], "", "")
    with pytest.raises(NoJanusNode):
        empty.pick()


async def test_pick_when_up_gives_up_after_the_timeout():
    pool = pool_of((False, 0, 0))
    with pytest.raises(NoJanusNode):
        await pool.pick_when_up(0)


async def test_pick_when_up_waits_for_a_node_to_come_up():
    pool = pool_of((False, 0, 0))

    async def come_up() -> None:
        await asyncio.sleep(0.05)
        pool.nodes[0].connection.connected = True

    riser = asyncio.create_task(come_up())
    assert await pool.pick_when_up(2.0) is pool.nodes[0]
    await riser


def test_on_node_lost_listens_on_every_node():
    pool = pool_of((True, 0, 0), (True, 0, 0))
    lost = []
    pool.on_node_lost(lost.append)
    assert all(node.on_lost == [lost.append] for node in pool.nodes)
