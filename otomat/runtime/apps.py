from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "otomat.runtime"
    label = "runtime"

    def ready(self) -> None:
        # The apps below the runtime do not import it: it connects itself to them.
        from otomat.catalog import product_checks
        from otomat.instances.signals import runner_needed
        from otomat.runtime.backends import sandbox
        from otomat.runtime.notify import on_runner_needed

        runner_needed.connect(on_runner_needed, dispatch_uid="otomat.runtime.wake")
        product_checks.use_sandbox(sandbox)  # product checks run in the instances' sandbox
