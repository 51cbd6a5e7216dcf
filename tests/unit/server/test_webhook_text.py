"""The chat line of a webhook call: someone's job name is shown, never obeyed (Slack's `<!here>`, a forged line)."""

from __future__ import annotations

from services.protocol.admin import WebhookEvent
from services.server.db.tables import JobRow
from services.server.store.webhooks import _text


def test_a_job_name_cannot_forge_a_line_ping_the_channel_or_make_a_link() -> None:
    """Names stored before the Server refused line breaks in them keep them: the chat line writes them out."""
    job = JobRow(id=71, name="a\nJob 'x' (#9) of admin completed: 5 tasks. <!here> <https://evil|report> & co",
                 submitter="ana")  # fmt: skip
    text = _text(WebhookEvent.JOB_CANCELED, job)
    assert "\n" not in text and "<" not in text and ">" not in text
    assert "&lt;!here&gt;" in text and "&lt;https://evil|report&gt;" in text and "&amp; co" in text
    assert text.startswith("Job 'a\\nJob 'x' (#9) of admin") and text.endswith("(#71) of ana was canceled.")
