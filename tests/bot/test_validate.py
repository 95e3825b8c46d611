from __future__ import annotations

from pathlib import Path

from bot.validate import is_named, responses_named_in, uttered_outside_stories


def test_responses_named_in_code_and_by_prefix_count_as_used(tmp_path: Path) -> None:
    source = tmp_path / "orders.py"
    source.write_text('turn.say("utter_order_status")\nturn.text_of(f"utter_label_order_{s}")\n')
    named = responses_named_in([source])

    assert named == {"utter_order_status", "utter_label_order_"}
    assert is_named("utter_label_order_shipped", named)
    assert not is_named("utter_order_status_old", named)


def test_form_questions_and_the_default_fallback_are_used_but_nothing_else() -> None:
    responses = {"utter_ask_otp_code", "utter_default", "utter_forgotten", "utter_x"}
    used = uttered_outside_stories(responses, {"utter_x"}, ["otp_code"])
    assert used == {"utter_ask_otp_code", "utter_default", "utter_x"}


def test_a_bare_f_string_prefix_names_no_response(tmp_path: Path) -> None:
    source = tmp_path / "survey.py"
    source.write_text('turn.say(f"utter_{slot}_hint")\n')
    assert not is_named("utter_survey_csat_hint", responses_named_in([source]))
