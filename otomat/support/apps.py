from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "otomat.support"
    label = "support"

    def ready(self) -> None:
        from otomat.billing.signals import invoice_paid
        from otomat.notify.services import register_context_loader
        from otomat.support import quotes
        from otomat.support.notices import load_context

        invoice_paid.connect(quotes.on_invoice_paid, dispatch_uid="support-quote-paid")
        register_context_loader("support", load_context)
        from otomat.notify.services import MESSAGE_HANDLERS
        from otomat.support.telegram import handle_message

        if handle_message not in MESSAGE_HANDLERS:
            MESSAGE_HANDLERS.append(handle_message)
