"""Moved to crm_store.campaigns.planning (issue 20). Only re-exports, for the benchmark module
another branch is moving at the same time; delete once it imports crm_store.campaigns.planning."""

from crm_store.campaigns.planning import plan_day, planned_campaign_keys

__all__ = ["plan_day", "planned_campaign_keys"]
