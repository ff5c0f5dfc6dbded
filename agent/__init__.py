"""The agent: the local self-check today; the daemon, spool and fixture runner to come."""
