"""Outgoing messages (SMS): written in the transaction that caused them, sent by an RQ job."""
