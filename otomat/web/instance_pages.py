"""The pages of an instance that show more than instances know: the order form (plans, coupon,
the invoice to pay), the instance page (its plan, the invoices to pay, its logs) and its logs
fragment. They are composed here, above instances, billing and the runtime; their URLs keep the
instances' names (``instances:install``, ``instances:detail``, ``instances:logs``; see
``otomat.web.instance_urls``). The order itself is billing's one ordering service
(:func:`otomat.billing.ordering.order_product`), which the API's install endpoint calls too."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from otomat.billing.invoicing import BillingError
from otomat.billing.models import Invoice, Subscription
from otomat.billing.ordering import order_product
from otomat.billing.subscriptions import had_trial, plans_for
from otomat.catalog import i18n, schema_form
from otomat.catalog.models import Product
from otomat.instances.services import InstanceError
from otomat.instances.views import get_instance, instance_context
from otomat.runtime.logs import tail

LOG_LINES = 100


@login_required
def install(request: HttpRequest, slug: str) -> HttpResponse:
    """The order form: the product's settings, a plan when it is sold by subscription, a
    coupon. Ordered, it goes to the invoice to pay, or to the instance when nothing is due."""
    product = get_object_or_404(Product, slug=slug, is_listed=True)
    version = product.latest_version()
    account = request.user.account
    if version is None:
        raise Http404
    if account is None:
        messages.error(request, _("Staff accounts cannot install; log in as a customer."))
        return redirect("catalog:detail", slug=slug)
    form_class = schema_form.build_form_class(
        version.config_schema, product_slug=product.slug, source_dir=version.source_path
    )
    plans = plans_for(product, account)
    i18n.remember_plan_texts(plans, version)
    form = form_class(request.POST or None)
    posted = request.method == "POST"
    name = request.POST.get("instance_name", "").strip() if posted else ""
    coupon = request.POST.get("coupon", "").strip() if posted else ""
    chosen = next((p for p in plans if str(p.pk) == request.POST.get("plan", "")), None)
    if posted and plans and chosen is None:
        form.add_error(None, _("Choose a plan."))
    if posted and form.is_valid():
        try:
            order = order_product(
                account=account,
                version=version,
                plan=chosen,
                name=name,
                config=form.config,
                actor=request.user,
                coupon_code=coupon,
                checked=True,  # the form's fields ran the live checks
            )
        except schema_form.ConfigError as exc:
            schema_form.add_config_errors(form, exc)
        except (InstanceError, BillingError) as exc:
            form.add_error(None, str(exc))
        else:
            if order.to_pay is not None:
                messages.success(
                    request,
                    _("Ordered. %(name)s starts as soon as it is paid.")
                    % {"name": name or product.name},
                )
                return redirect("billing:pay", token=order.to_pay.token)
            messages.success(
                request, _("%(name)s is being installed.") % {"name": order.instance.name}
            )
            return redirect("instances:detail", instance_id=order.instance.id)
    return render(
        request,
        "instances/install.html",
        {
            "product": product,
            "version": version,
            "form": form,
            "instance_name": name,
            "plans": plans,
            "chosen": chosen or (plans[0] if plans else None),
            "coupon": coupon,
            "trial_used": bool(plans) and had_trial(account, plans[0]),
        },
        status=400 if form.errors else 200,
    )


@login_required
def detail(request: HttpRequest, instance_id) -> HttpResponse:
    """The instance page: what instances know of it, its plan and the invoices left to pay,
    and its latest log lines."""
    instance = get_instance(request, instance_id)
    context = instance_context(request, instance)
    subscription = Subscription.objects.filter(instance=instance).select_related("plan").first()
    if subscription is not None:  # its plan's name in the reader's language, without a query
        i18n.remember_plan_texts([subscription.plan], context["latest_version"])
    context["subscription"] = subscription
    context["open_invoices"] = (
        list(subscription.invoices.filter(status=Invoice.Status.OPEN).order_by("due_at"))
        if subscription
        else []
    )
    context["logs"] = tail(instance.log_path, LOG_LINES)
    return render(request, "instances/detail.html", context)


@login_required
def logs_partial(request: HttpRequest, instance_id) -> HttpResponse:
    """HTMX: the log box, refreshed while the page is open."""
    instance = get_instance(request, instance_id)
    return render(
        request,
        "instances/_logs.html",
        {"instance": instance, "logs": tail(instance.log_path, LOG_LINES)},
    )
