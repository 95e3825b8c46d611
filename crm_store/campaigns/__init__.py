"""Care campaigns: what the care scheduler sends on its own, to whom, and when.

- `catalogue/<key>.py`: one module per campaign, its spec (`SPEC`) and candidate query.
- `spec.py`: `CampaignSpec`, what a campaign is; `registry.py`: `REGISTRY`, every spec, the
  most important first (the scheduler, the commands, the console, the dispatcher and the actions
  read it).
- `planning.py`: the one planning loop (`plan_campaigns`), `plan_campaign`, `plan_day`,
  `ensure_campaigns`, the previews; `pipeline.py`: the outcome of every candidate, set-based;
  `coupons.py`: coupons issued with their messages; `candidates.py`: the columns every candidate
  query selects.
- `rules.py`: thresholds (`PlanSettings`) and pure rules shared with tests/oracles/campaigns/.
- `rows.py`: the campaign rows a manager owns (on/off, daily cap, audited), re-exported here.

docs/campaigns.md, "Adding a campaign: the three files".
"""

from crm_store.campaigns.rows import (
    MAX_DAILY_CAP,
    OFF,
    ON,
    Campaign,
    CampaignTotals,
    campaign_settings,
    campaign_totals,
    check_daily_cap,
    create_campaign,
    find_campaign,
    get_campaign,
    get_campaign_by_id,
    is_running,
    list_campaigns,
    set_campaign_enabled,
    set_campaign_status,
    set_daily_cap,
    switched_off,
)

__all__ = [
    "MAX_DAILY_CAP",
    "OFF",
    "ON",
    "Campaign",
    "CampaignTotals",
    "campaign_settings",
    "campaign_totals",
    "check_daily_cap",
    "create_campaign",
    "find_campaign",
    "get_campaign",
    "get_campaign_by_id",
    "is_running",
    "list_campaigns",
    "set_campaign_enabled",
    "set_campaign_status",
    "set_daily_cap",
    "switched_off",
]
