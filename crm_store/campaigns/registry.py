"""REGISTRY: every campaign's spec, the most important first.

It is the `SPEC` of every module in crm_store/campaigns/catalogue/, so a campaign is added by
adding its module (docs/campaigns.md, "Adding a campaign: the three files"). Planning
(planning.plan_day), the care scheduler, the `carebot campaigns` commands, the console, the
dispatcher and the actions all read it; none of them names a campaign.
"""

from __future__ import annotations

import importlib
import pkgutil

from crm_store.campaigns import catalogue
from crm_store.campaigns.spec import CampaignSpec
from crm_store.errors import NotFound

# Complaint follow-ups are tickets, not a campaign; the pure contact budget
# (tests/oracles/budget.py) ranks them before every campaign.
COMPLAINT_FOLLOW_UP = "complaint_follow_up"


def _catalogue() -> tuple[CampaignSpec, ...]:
    specs = []
    for module in pkgutil.iter_modules(catalogue.__path__):
        spec = getattr(importlib.import_module(f"{catalogue.__name__}.{module.name}"), "SPEC", None)
        if isinstance(spec, CampaignSpec):
            specs.append(spec)
    return tuple(sorted(specs, key=lambda spec: (spec.priority, spec.key)))


REGISTRY: tuple[CampaignSpec, ...] = _catalogue()
_BY_KEY = {spec.key: spec for spec in REGISTRY}


def campaign_keys() -> list[str]:
    """Every campaign's key, the most important first (the order planning takes them in)."""
    return [spec.key for spec in REGISTRY]


def find_spec(key: str) -> CampaignSpec | None:
    return _BY_KEY.get(key)


def spec_for(key: str) -> CampaignSpec:
    spec = _BY_KEY.get(key)
    if spec is None:
        raise NotFound(f"no campaign {key} ({', '.join(campaign_keys())})")
    return spec


def priority_order() -> tuple[str, ...]:
    """Who takes a customer's contact budget first: complaint follow-ups, then the campaigns."""
    return (COMPLAINT_FOLLOW_UP, *campaign_keys())
