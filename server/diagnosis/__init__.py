"""Diagnosis: rules (CEL), catalogs, warranty and trends turn a stored report into what to do."""
