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
        from django.conf import settings

        if settings.RUNTIME_BACKEND == "kubernetes":
            # Instance data lives in the cluster's volumes: the purge deletes them there too.
            from otomat.instances.signals import instance_data_purged
            from otomat.runtime.backends.kubernetes import on_instance_data_purged

            instance_data_purged.connect(on_instance_data_purged, dispatch_uid="otomat.k8s.purge")
        product_checks.use_sandbox(sandbox)  # product checks run in the instances' sandbox
