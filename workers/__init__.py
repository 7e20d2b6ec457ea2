"""RQ job functions, the worker and the cron scheduler entry points. Jobs are thin: they take
ids, open their own session, re-check state, and return quietly when nothing is left to do."""
