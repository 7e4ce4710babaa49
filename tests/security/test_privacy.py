"""PII masking: the contracts mark the columns; previews, samples and texts show them masked."""

import json

import polars as pl

from assets.metadata import markdown_table, top_reasons
from governance.contracts import USERS
from governance.privacy import MASK, mask_frame, mask_text, pii_columns


def test_the_contract_marks_the_users_personal_columns_and_their_aliases():
    assert set(USERS.pii) == {"email", "phone", "name"}
    assert {"email", "phone", "name", "full_name"} <= pii_columns()
    assert "user_id" not in pii_columns() and "country" not in pii_columns()


def test_mask_frame_masks_columns_records_and_the_values_wherever_they_appear():
    frame = pl.DataFrame({
        "user_id": ["u1", "u2"],
        "Full_Name": ["Jane Doe", None],
        "reason": ["name 'Jane Doe' is a duplicate; call +44 20 7946 0958", "signup_at: '2026-11-10 12:30:45' 1234567.89"],
        "record": [json.dumps({"user_id": "u1", "email": "jane.doe@example.com", "NAME": "Jane Doe"}),
                   '{"user_id": "u2", "phone": "+1 (555) 010-9999", "name": "Bob \\"Cut'],  # truncated, invalid
    })
    masked = mask_frame(frame)
    text = json.dumps(masked.to_dicts())
    for secret in ("Jane Doe", "jane.doe@example.com", "7946 0958", "010-9999", "Bob"):
        assert secret not in text, secret
    assert masked["Full_Name"].to_list() == [MASK, None]  # nulls stay nulls
    assert masked["user_id"].to_list() == ["u1", "u2"]
    assert "2026-11-10 12:30:45" in masked["reason"][1] and "1234567.89" in masked["reason"][1]  # not phones
    assert json.loads(masked["record"][0]) == {"user_id": "u1", "email": MASK, "NAME": MASK}


def test_mask_text_masks_json_keys_values_emails_and_phones():
    out = mask_text('{"email": "a.b@c.org", "name": "Al Bo"} seen Al Bo, call 020 7946 0958', values=["Al Bo"])
    assert "a.b@c.org" not in out and "Al Bo" not in out and "7946" not in out


def test_previews_and_quarantine_samples_in_dagster_metadata_are_masked():
    users = pl.DataFrame({"user_id": ["u1"], "email": ["jane.doe@example.com"], "phone": ["+44 20 7946 0958"],
                          "name": ["Jane Doe"]})
    preview = markdown_table(users).value
    assert "jane.doe" not in preview and "Jane Doe" not in preview and "7946" not in preview
    quarantine = pl.DataFrame({"rule": ["bad_email"], "reason": ["email 'jane.doe@example' is not valid (Jane Doe)"],
                               "file": ["users/x.csv"], "row_number": [3],
                               "record": [json.dumps({"user_id": "u1", "full_name": "Jane Doe", "email": "jane.doe@example"})]})
    sample = top_reasons(quarantine).value
    assert "Jane Doe" not in sample and "jane.doe@example" not in sample and "bad_email" in sample
