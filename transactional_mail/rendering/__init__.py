"""Rendering: a template revision + a layout revision + a JSON context -> a RenderedEmail.

Pure: no database queries, no writes, no network. The worker, the admin preview and the
test send all call :func:`render_email`. One module per concept, each importing only
those listed before it:

* :mod:`~transactional_mail.rendering.budget`: the budget every render runs under;
* :mod:`~transactional_mail.rendering.library`: the allow-listed tags and filters;
* :mod:`~transactional_mail.rendering.engine`: the restricted, metered template engine;
* :mod:`~transactional_mail.rendering.context`: the read-only JSON context templates see;
* :mod:`~transactional_mail.rendering.layout`: a layout rendered with its brand values;
* :mod:`~transactional_mail.rendering.inlining`: premailer, never fetching, bounded;
* :mod:`~transactional_mail.rendering.html_scan` and
  :mod:`~transactional_mail.rendering.selectors`: what the precompiler checks;
* :mod:`~transactional_mail.rendering.precompile`: CSS inlined once per revision pair;
* :mod:`~transactional_mail.rendering.compiled`: compiled revision pairs and their cache;
* :mod:`~transactional_mail.rendering.links`: URL attributes that could run script,
  neutralised;
* :mod:`~transactional_mail.rendering.text`: the text part derived from the HTML;
* :mod:`~transactional_mail.rendering.compose`: :func:`render_email` itself;
* :mod:`~transactional_mail.rendering.brand`: the colours and font stacks a layout holds;
* :mod:`~transactional_mail.rendering.validation`: the checks run when a source is saved;
* :mod:`~transactional_mail.rendering.preview`: the admin editor's preview of unsaved
  sources, and its warnings (missing variables, links, images, size);
* :mod:`~transactional_mail.rendering.layout_preview`: the layout form's preview of an
  unsaved layout around a sample, in light and dark mode.
"""

from .compose import RenderedEmail, render_email

__all__ = ["RenderedEmail", "render_email"]
