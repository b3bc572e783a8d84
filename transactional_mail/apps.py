from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class TransactionalMailConfig(AppConfig):
    name = "transactional_mail"
    verbose_name = _("Transactional mail")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            send_checks,
        )
        from .default_layout import install_default_layout
        from .periodic.beat import sync_schedule_rows
        from .schedule import install_periodic_tasks
        from .triggers import cancellation, digests, receivers  # noqa: F401  (digests: its task)

        post_migrate.connect(
            install_periodic_tasks,
            sender=self,
            dispatch_uid="transactional_mail.install_periodic_tasks",
        )
        post_migrate.connect(
            sync_schedule_rows,
            sender=self,
            dispatch_uid="transactional_mail.sync_schedule_rows",
        )
        post_migrate.connect(
            install_default_layout,
            sender=self,
            dispatch_uid="transactional_mail.install_default_layout",
        )
        post_migrate.connect(
            receivers.sync_trigger_rows,
            sender=self,
            dispatch_uid="transactional_mail.sync_trigger_rows",
        )
        receivers.connect()
        # Delivery asks the triggers through the registry: it never imports them.
        send_checks.register("transactional_mail.triggers", cancellation.cancellation_reason)
        _connect_celery_signals()
        _connect_password_reset()
        try:
            from anymail.signals import tracking
        except ImportError:  # pragma: no cover - anymail is a dependency
            return
        from .tracking.receiver import handle_tracking_event

        tracking.connect(
            handle_tracking_event, weak=False, dispatch_uid="transactional_mail.tracking"
        )


def _connect_password_reset() -> None:
    """Register the password reset tasks, and give Django's PasswordResetView the app's
    form while ``USE_PASSWORD_RESET_FORM`` is on, allauth's while ``ACCOUNT_ADAPTER`` is
    the app's (checked again when settings change)."""
    from django.apps import apps

    if not apps.is_installed("django.contrib.auth"):
        return
    from django.core.signals import setting_changed

    from .auth import sync_password_reset_form

    sync_password_reset_form()
    setting_changed.connect(sync_password_reset_form, weak=False,
                            dispatch_uid="transactional_mail.password_reset_form")
    if apps.is_installed("allauth.account"):
        # allauth's reset view gets the app's form while the app's adapter is in use.
        from .allauth import sync_reset_password_form

        sync_reset_password_form()
        setting_changed.connect(sync_reset_password_form, weak=False,
                                dispatch_uid="transactional_mail.allauth_reset_form")


def _connect_celery_signals() -> None:
    try:
        from celery.signals import beat_init, worker_init
    except ImportError:  # pragma: no cover - celery is a dependency
        return
    from .periodic.beat import sync_schedule_rows
    from .worker import warn_about_worker_settings

    # Beat reads its rows after this signal: a deploy that changed SCHEDULES without a
    # migrate still gets the right rows when beat restarts.
    beat_init.connect(
        lambda sender=None, **kwargs: sync_schedule_rows(),
        weak=False, dispatch_uid="transactional_mail.sync_schedule_rows_at_beat_start",
    )
    worker_init.connect(
        warn_about_worker_settings, weak=False, dispatch_uid="transactional_mail.worker_init"
    )
