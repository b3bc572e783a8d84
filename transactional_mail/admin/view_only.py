"""The admin's view-only pages: rows written by the app, which staff read and never edit."""

from __future__ import annotations


class ViewOnlyAdmin:
    """A ``ModelAdmin`` mixin: no add, change or delete, whatever the user's permissions
    (actions of its own check their own permission)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
