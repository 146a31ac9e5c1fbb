"""Fleet security: the PKI, broker credentials, and the PAN scanner.

See docs/security.md for the threat model and what is enforced where.
"""
