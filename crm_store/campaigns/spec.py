"""What a campaign is, in one record: `CampaignSpec`. Every campaign module in `catalogue/`
defines one as `SPEC`; `registry.py` collects them. Planning, the scheduler, the commands, the
dispatcher and the actions read these fields instead of naming campaigns (docs/campaigns.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.sql import Select

from crm_store.campaigns.rules import PlanSettings

# The intents the dispatcher triggers through Rasa (domain.yml): a care message, composed by
# actions/campaign_messages.py, or the post-purchase survey, asked by actions/survey.py.
CARE_MESSAGE_INTENT = "EXTERNAL_care_message"
SURVEY_INTENT = "EXTERNAL_survey"

# (day, now, settings) -> the day's candidates (customer columns, period, detail, rank), or
# None when the campaign has nobody that day (no festival). crm_store/campaigns/candidates.py
# has the columns every query selects.
CandidateQuery = Callable[[date, datetime, PlanSettings], "Select | None"]


@dataclass(frozen=True)
class CouponOffers:
    """The personal coupons a campaign's messages carry, issued with the outbox row.

    The offers' keys start with `<campaign key>_<period>_` (so `find_message_coupon` finds a
    message's coupon by its campaign and period), and a candidate's `detail` names its offer.
    """

    period: Callable[[date], str]  # the offers' period on a day (and the messages')
    offers: Callable[[str], Mapping[str, tuple[int, int]]]  # period -> key: (cents off, min spend)
    # Made with the campaign rows (ensure_campaigns) too, not only when planning first issues one
    made_with_campaign: bool = False

    def prefix(self, campaign_key: str, period: str) -> str:
        return f"{campaign_key}_{period}_"


@dataclass(frozen=True)
class CampaignSpec:
    """One campaign: its row in the CRM, how planning finds its candidates, how it is sent."""

    key: str  # the campaign's key everywhere: the CRM row, the outbox, the commands, the logs
    name: str  # what managers read (the console, the dashboard)
    kind: str  # the CRM row's kind (crm_store.models.CAMPAIGN_KINDS)
    category: str  # the consent category its messages need
    priority: int  # planned in ascending order: a lower number takes a customer's budget first
    per_item: bool  # a candidate per order or item: several a day per customer, best rank first
    candidates: CandidateQuery
    # What writes the message: for CARE_MESSAGE_INTENT a composer of actions/campaign_messages.py
    # (COMPOSERS), for SURVEY_INTENT the action that asks the survey.
    composer: str
    responses: tuple[str, ...]  # the domain.yml responses its message opens with
    intent: str = CARE_MESSAGE_INTENT  # what the dispatcher triggers
    trigger_names_product: bool = False  # the period is an order id; the trigger names its product
    # A hold-out gets nothing, to measure the uplift: drawn per this period (rules.control_bucket)
    control_group_period: Callable[[date], str] | None = None
    coupons: CouponOffers | None = None
