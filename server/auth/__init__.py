"""Who is calling, and what they may do.

    caller = await authenticator.require(context, "probelink.v1.ReportsService/GetReport")

`credentials.py` makes and hashes the secrets (device credentials, people's API tokens,
enroll secrets); `roles.py` is the one table of which role may call which RPC;
`authenticator.py` turns a call's `authorization: Bearer …` metadata into a `Caller`.
"""
