"""A throwaway Redis Cluster on loopback ports, for the tests and the benchmarks.

Three (or more) `redis-server --cluster-enabled yes` processes in a directory of their
own, no persistence, joined by `redis-cli --cluster create ... --cluster-replicas 0`.
Needs `redis-server` and `redis-cli` 7 or later on PATH (`available` says why not).
Like embedded.py for a single server, but nothing here is used in production.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster

HOST = "127.0.0.1"
MIN_MAJOR = 7
START_TIMEOUT_S = 20.0
BUS_OFFSET = 10000  # each node's cluster bus port is its port + 10000
_POLL_S = 0.05


def available() -> str | None:
    """None when a local cluster can be started here, else the reason it cannot."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        return "no redis-server / redis-cli on PATH (a Redis Cluster needs Redis >= 7)"
    out = subprocess.run([server, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"v=(\d+)\.", out.stdout)
    if found is None or int(found.group(1)) < MIN_MAJOR:
        return f"{server} is not Redis >= {MIN_MAJOR} ({out.stdout.strip()})"
    return None


@dataclass
class LocalCluster:
    """Masters on `ports` (one slot range each), files under `home`."""

    home: Path
    ports: tuple[int, ...] = (7101, 7102, 7103)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """feedbackguard's URL for it (`connection.client_from_url`)."""
        return f"redis+cluster://{HOST}:{self.ports[0]}"

    def start(self) -> LocalCluster:
        busy = [p for port in self.ports for p in (port, port + BUS_OFFSET) if _in_use(p)]
        if busy:
            raise RuntimeError(f"ports {busy} are taken: another local cluster is running?")
        for port in self.ports:
            node = self.home / str(port)
            node.mkdir(parents=True, exist_ok=True)
            self._procs.append(
                subprocess.Popen(
                    [
                        *("redis-server", "--port", str(port), "--bind", HOST),
                        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                        *("--save", "", "--appendonly", "no", "--protected-mode", "yes"),
                        *("--logfile", str(node / "redis.log")),
                    ],
                    cwd=node,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        try:
            for port in self.ports:
                self._wait(self.node(port).ping)
            subprocess.run(
                [
                    *("redis-cli", "--cluster", "create"),
                    *(f"{HOST}:{port}" for port in self.ports),
                    *("--cluster-replicas", "0", "--cluster-yes"),
                ],
                check=True,
                capture_output=True,
            )
            self._wait(self._ready)
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        for port in self.ports:
            node = self.node(port)
            state = node.cluster("info").get("cluster_state")
            node.close()
            if state != "ok":
                return False
        return True

    def _wait(self, ok: Callable[[], object]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if ok():
                    return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"local Redis Cluster on {self.ports} did not come up")
            time.sleep(_POLL_S)

    def client(self) -> RedisCluster:
        return RedisCluster(host=HOST, port=self.ports[0])

    def node(self, port: int) -> redis.Redis[bytes]:
        """A plain client of one master (INFO, CLUSTER commands)."""
        return redis.Redis(host=HOST, port=port)

    def port_of(self, key: str) -> int:
        """The port of the master that holds `key`."""
        r = self.client()
        try:
            return int(r.nodes_manager.get_node_from_slot(r.keyslot(key)).port)
        finally:
            r.close()

    def flush(self) -> None:
        for port in self.ports:
            client = self.node(port)
            client.flushall()
            client.script_flush()
            client.close()

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0
