"""The schedule side of Canary: people and teams, recurrence, the planner
(tick), rounds and invitations, delivery, and the RQ jobs that run them."""
