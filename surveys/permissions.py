"""Who may do what: each group of roles a route requires, named once.

`docs/permissions.md` is the route-by-role matrix; tests/test_permissions.py
and the black-box suite check every route against it.
"""

from surveys.org.models import STAFF_ROLES

# Every staff member (pm, leader, admin): read scorecards, cadences, alerts, people.
STAFF = STAFF_ROLES
# Those who change question sets, cadences, replies and alert routing.
EDITORS = ("pm", "admin")
# Those who write "you said, we did" replies.
PMS = ("pm",)
# People, operations, the outbox, the audit log, rep-link revocation.
ADMINS = ("admin",)
