"""Who may open a staff page: Flask-Login's user loader (a session counts
only while its server record is open and its version current) and the role
decorators every staff view wears."""

from functools import wraps

from flask import abort, session
from flask_login import current_user, login_required

from surveys.org.models import Person, STAFF_ROLES
from surveys.auth.service import SESSION_VERSION_KEY, current_staff_session
from surveys.extensions import db, login_manager

login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Please sign in to see that page."
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(user_id):
    try:
        person = db.session.get(Person, int(user_id))
    except (TypeError, ValueError):
        return None
    if person is None or not person.is_staff or not person.active:
        return None
    if session.get(SESSION_VERSION_KEY) != (person.session_version or 0):
        return None  # signed out everywhere (or password reset) since
    if current_staff_session(person) is None:
        return None  # signed out on the server, or from before sessions were recorded
    return person


def roles_required(*roles):
    """Staff views: signed in (else redirect to sign-in) and holding a role (else 403)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles
        return wrapped

    return decorator


# Any signed-in staff member (pm, leader or admin).
staff_required = roles_required(*STAFF_ROLES)
