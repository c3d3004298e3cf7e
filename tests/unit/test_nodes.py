"""janus.nodes.JanusPool: which node a new meeting goes to."""

from __future__ import annotations

import asyncio

import pytest

from visio.janus.nodes import JanusPool, NodeLoad, NoJanusNode


class StubConnection:
    def __init__(self, connected: bool) -> None:
        self.connected = connected


def pool_of(*nodes: bool, capacity: int = 100) -> JanusPool:
    """A pool whose nodes are up or not."""
    pool = JanusPool([f"ws://10.0.0.{i}:8188" for i in range(len(nodes))], "s", "k", capacity)
    for node, up in zip(pool.nodes, nodes, strict=True):
        node.connection = StubConnection(up)  # type: ignore[assignment]
    return pool


def loads(pool: JanusPool, *figures: NodeLoad) -> dict[str, NodeLoad]:
    return {node.url: load for node, load in zip(pool.nodes, figures, strict=True)}


def test_nodes_share_the_secrets():
    pool = JanusPool(["ws://a", "ws://b"], "secret", "key")
    assert [(n.url, n.api_secret, n.admin_key) for n in pool.nodes] == [
        ("ws://a", "secret", "key"),
        ("ws://b", "secret", "key"),
    ]


def test_a_node_without_connection_is_down():
    assert not JanusPool(["ws://a"], "", "").nodes[0].up


def test_the_least_loaded_node_carries_the_fewest_streams_for_its_capacity():
    pool = pool_of(True, True, True)
    found = loads(pool, NodeLoad(streams=50), NodeLoad(streams=20), NodeLoad(streams=90))
    assert pool.least_loaded(pool.nodes, found) is pool.nodes[1]


def test_a_busy_cpu_counts_as_much_as_streams():
    pool = pool_of(True, True)
    found = loads(pool, NodeLoad(streams=10, cpu=0.95), NodeLoad(streams=60, cpu=0.3))
    assert pool.least_loaded(pool.nodes, found) is pool.nodes[1]


def test_ties_go_to_the_fewest_participants_then_meetings():
    pool = pool_of(True, True, True)
    found = loads(
        pool,
        NodeLoad(meetings=2, participants=4),
        NodeLoad(meetings=1, participants=4),
        NodeLoad(meetings=3, participants=4),
    )
    assert pool.least_loaded(pool.nodes, found) is pool.nodes[1]


def test_usable_nodes_are_up_and_not_draining():
    pool = pool_of(False, True, True)
    pool.nodes[2].draining = True
    assert pool.usable() == [pool.nodes[1]]


def test_loads_add_up_across_server_processes():
    ours = NodeLoad(1, 4, 20)  # what this process's meetings put there
    theirs = NodeLoad(2, 3, 10, cpu=0.5, rx_bps=1e6, tx_bps=2e6)  # with the node's report
    assert ours + theirs == NodeLoad(3, 7, 30, 0.5, 1e6, 2e6)  # the node's figures, once
    assert NodeLoad(streams=50).score(100) == 0.5


async def test_pick_when_up_gives_up_after_the_timeout():
    pool = pool_of(False)
    with pytest.raises(NoJanusNode):
        await pool.pick_when_up(0, dict)


async def test_pick_when_up_waits_for_a_node_to_come_up():
    pool = pool_of(False)

    async def come_up() -> None:
        await asyncio.sleep(0.05)
        pool.nodes[0].connection.connected = True

    riser = asyncio.create_task(come_up())
    assert await pool.pick_when_up(2.0, dict) is pool.nodes[0]
    await riser


def test_on_node_lost_listens_on_every_node():
    pool = pool_of(True, True)
    lost = []
    pool.on_node_lost(lost.append)
    assert all(node.on_lost == [lost.append] for node in pool.nodes)
