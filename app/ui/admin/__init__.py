"""Farm administration in the app (admins only): users and roles, API tokens, Managers, webhooks."""

from app.ui.admin.dialog import AdminAccess, AdminDialog

__all__ = ["AdminAccess", "AdminDialog"]
