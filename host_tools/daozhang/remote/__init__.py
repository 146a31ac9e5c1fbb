"""Remote commands to devices: signed with each device's key, counted against replays, answered
(DESIGN §1.5). `daozhang device cmd` is the command line; `daozhang flash` uses it to ask a
freshly flashed agent for a heartbeat."""
