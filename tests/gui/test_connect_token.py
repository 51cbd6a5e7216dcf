"""The start dialog's pasted API token: one no header can carry is refused in words the dialog shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.desktop import connect
from app.ui.start_dialog import StartChoice
from services.protocol.server_client import ApiError


@pytest.mark.parametrize("token", ["tbl_é-pasted", "tbl_two words", "tbl_\x07bell", "tbl_a\nsecond-line"])
async def test_a_pasted_token_no_header_can_carry_is_refused_without_showing_it(token: str) -> None:
    """httpx raised UnicodeEncodeError for a non-ASCII token, which no handler caught: the app ended."""
    choice = StartChoice("connect", Path(), 0, 0, "http://127.0.0.1:9", "", "", token)
    with pytest.raises(ApiError) as info:
        await connect(choice)
    assert info.value.detail.startswith("That API token cannot be sent: "), info.value.detail
    assert token not in info.value.detail
