def current_account(request):
    user = getattr(request, "user", None)
    account = user.account if user is not None and user.is_authenticated else None
    return {"current_account": account}
