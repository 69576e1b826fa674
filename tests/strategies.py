"""Hypothesis strategies shared by the property tests: any JSON value, with the keys and
words of Pinpointe's envelopes drawn often, so the interesting branches are reached."""

from __future__ import annotations

from hypothesis import strategies as st

KEYS = ["status", "data", "pagination", "next", "response", "item", "errormessage", "0", "1"]


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["SUCCESS", "success", "FAILED", "Unable to verify user credentials"])
)


json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)
