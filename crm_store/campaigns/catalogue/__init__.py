"""One module per campaign: its `SPEC` (crm_store.campaigns.spec.CampaignSpec) and its candidate
query. crm_store.campaigns.registry collects every module's SPEC; adding a module here adds the
campaign everywhere (docs/campaigns.md, "Adding a campaign: the three files")."""
