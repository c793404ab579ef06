"""A finished project becomes a draft catalog product: the owner's starting point for selling it
again. The product is unlisted (a draft) and has no version yet; the owner imports one and
lists it from the catalog's management page."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from otomat.accounts.models import User
from otomat.catalog.models import Product
from otomat.projects.board import services
from otomat.projects.board.models import Card, Project
from otomat.projects.board.services import BoardError


def _description(project: Project) -> str:
    done = project.cards.filter(status=Card.Status.RELEASED, is_change_request=False)
    lines = [project.description.strip()] if project.description.strip() else []
    features = [f"- {card.title}" for card in done.order_by("position", "pk")[:50]]
    if features:
        lines.append("\n".join(features))
    return "\n\n".join(lines)


def _free_slug(title: str) -> str:
    base = (slugify(title) or "project")[:56]
    slug, n = base, 2
    while Product.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def product_from_project(project: Project, *, actor: User) -> Product:
    """The draft (unlisted) product made from a finished project, named and described from
    it; asked again, the same product. Raises BoardError."""
    services._require_staff(actor)
    if project.product_id is not None:
        return project.product
    if project.status != Project.Status.RELEASED:
        raise BoardError(_("Only a finished project can become a product."))
    for _attempt in range(3):
        try:
            with transaction.atomic():
                locked = Project.objects.select_for_update().get(pk=project.pk)
                if locked.product_id is not None:
                    return locked.product
                product = Product.objects.create(
                    slug=_free_slug(project.title),
                    name=project.title,
                    description=_description(project),
                    is_listed=False,
                )
                Project.objects.filter(pk=project.pk).update(product=product)
                project.product = product
                services._audit(
                    "board.product_drafted",
                    actor=actor,
                    project=project,
                    target=product,
                    slug=product.slug,
                )
                return product
        except IntegrityError:  # another product took the slug in between: try the next one
            continue
    raise BoardError(_("Could not find a free product address; try again."))
