"""The campaigns' eligibility rules as pure functions: plain facts in, a Decision out.

One module per campaign. They decide whether a message is due on a day and for which period;
consent, quiet hours, the weekly cap and priority are the contact budget's (../budget.py).
crm_store/campaigns/ (the candidate queries and pipeline.py) applies the same rules as set-based
SQL; tests keep the two in step.
"""
