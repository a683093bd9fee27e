"""Pure-Python twin of ``simulacra_session._native``, one module per native job module."""
