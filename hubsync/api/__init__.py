"""Shared pieces of the REST API: errors, parsing, paging, access, throttles."""
