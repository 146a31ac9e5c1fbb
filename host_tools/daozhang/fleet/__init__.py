"""The fleet as the store sees it: `status` (`daozhang fleet status`), one row per device,
worst first. Whole fleets simulated on one machine live in the test lab (`daozhang.lab.fleet`).
"""
