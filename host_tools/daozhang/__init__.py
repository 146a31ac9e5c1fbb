"""daozhang (到账): evidence for why a POS merchant's money did not arrive."""

__version__ = "0.1.0"
