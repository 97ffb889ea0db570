"""Deal moments (issue 15): deals from the CRM, their events, and the
questions a rep is asked when one of their deals closes."""
