from django.apps import AppConfig


class BoardConfig(AppConfig):
    name = "otomat.projects.board"
    label = "board"
    verbose_name = "Projects: board"

    def ready(self) -> None:
        from otomat.billing.signals import invoice_paid
        from otomat.notify.services import MESSAGE_HANDLERS
        from otomat.projects.board import channels, revisions
        from otomat.support import inbound

        invoice_paid.connect(revisions.on_invoice_paid, dispatch_uid="board-revision-paid")
        # Before support's handler: it takes any plain text as a ticket message.
        if channels.handle_telegram not in MESSAGE_HANDLERS:
            MESSAGE_HANDLERS.insert(0, channels.handle_telegram)
        inbound.register_subject_handler(channels.PREFIX, channels.handle_email)
