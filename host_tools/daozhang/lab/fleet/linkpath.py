"""A board's path to the broker: the fault proxy in front of it (proxy mode), or the proxy
inside the board's own network namespace with `tc` shaping on its veth (netem mode)."""

from __future__ import annotations

from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.faults.proxy import FaultProxy
from daozhang.lab.fleet import plan
from daozhang.lab.fleet.netem import Namespace
from daozhang.lab.fleet.scenario import Device
from daozhang.lab.fleet.supervisor import Supervisor


class ProxyPath:
    """A board's link as the fault proxy shows it (the proxy has no jitter: netem mode does)."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self._down = False

    @property
    def port(self) -> int:
        return self.proxy.port

    def apply(self, state: plan.LinkState) -> None:
        # The board's own link down: nothing can pass either, whatever the path does.
        self.proxy.blackhole(state.path == plan.BLACKHOLE or not state.link_up)
        down = state.path == plan.DOWN
        if down != self._down:
            self.proxy.refuse(down)
            if down:
                self.proxy.reset()
            self._down = down
        bytes_per_s = state.kbps * 125.0
        self.proxy.shape(delay_ms=state.delay_ms, up_bps=bytes_per_s, down_bps=bytes_per_s)

    def reset(self) -> None:
        self.proxy.reset()


class NetemPath(ProxyPath):
    """netem mode: the proxy runs inside the board's namespace (on its loopback) and forwards
    over the veth to the broker's listener on the host end; delay, jitter, loss and bandwidth
    are `tc` on the veth, blackhole/down/reset stay the proxy's."""

    def __init__(self, proxy: FaultProxy, namespace: Namespace) -> None:
        super().__init__(proxy)
        self.namespace = namespace
        self._shape: tuple[int, int, float, int] | None = None

    def apply(self, state: plan.LinkState) -> None:
        super().apply(plan.LinkState(path=state.path, link_up=state.link_up))
        shape = (state.delay_ms, state.jitter_ms, state.loss_pct, state.kbps)
        if shape != self._shape:
            self.namespace.shape(*shape)
            self._shape = shape


def netem_namespaces(
    devices: list[Device], supervisor: Supervisor, run_tag: str
) -> list[Namespace]:
    """A namespace per board, deleted when the run ends."""
    spaces = []
    for device in devices:
        ns = Namespace.for_board(run_tag, device.index).create()
        supervisor.adopt(f"netns {ns.name}", ns.delete)
        spaces.append(ns)
    return spaces


def broker_listeners(spaces: list[Namespace], port: int) -> list[str]:
    """Mosquitto listens on each veth's host end too (never on a routed address)."""
    return [f"listener {port} {ns.host_ip}" for ns in spaces]


def open_netem_path(namespace: Namespace, broker: Mosquitto, supervisor: Supervisor) -> NetemPath:
    # Created in the namespace: the proxy's loop thread, its listening socket (the board's
    # loopback) and its connections to the broker (over the veth) all live there.
    proxy = namespace.call(lambda: FaultProxy(namespace.host_ip, broker.port).start())
    supervisor.adopt(f"proxy {namespace.name}", proxy.stop)
    return NetemPath(proxy, namespace)
