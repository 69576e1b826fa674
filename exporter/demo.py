"""--demo: the simulator in-process and a configuration pointing at it."""

from __future__ import annotations

from exporter.config import AccountConfig, Secret, Settings
from exporter.simulator import SimAccount, Simulator

DEMO_ACCOUNT = "demo"
DEMO_TOKEN = "demo-token"


def start_demo(autoresponders: int = 25, poll_interval: float = 15.0) -> tuple[Simulator, Settings]:
    """Start a simulator on a free loopback port; return it and settings that poll it."""
    simulator = Simulator(
        [SimAccount(username=DEMO_ACCOUNT, token=DEMO_TOKEN, autoresponders=autoresponders)],
        admin=False,  # no process beside the demo may switch its account to a fault
    ).start("127.0.0.1", 0)
    account = AccountConfig(
        name=DEMO_ACCOUNT,
        api_url=simulator.url,
        username=DEMO_ACCOUNT,
        usertoken=Secret(DEMO_TOKEN),
        poll_interval=poll_interval,
        timeout=10.0,
        stale_after=poll_interval * 4,
        groupings=("autoresponder", "send"),
        max_sends_per_autoresponder=5,
    )
    settings = Settings(
        accounts=(account,),
        poll_interval=poll_interval,
        timeout=10.0,
        stale_after=poll_interval * 4,
    )
    return simulator, settings
