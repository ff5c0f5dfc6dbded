"""The contract both sides import, generated from the `.proto` files beside this one.

Regenerate with `make protos`; `tests/test_protos_generated.py` fails when the committed
code differs from a fresh generation.
"""
