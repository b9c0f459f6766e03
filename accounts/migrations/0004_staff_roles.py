"""Staff roles as Django groups (docs/architecture.md, "Back office"): what each role may see and do in the admin.

The table is this migration's own copy, as migrations are history: a later change of a role is a new migration.
Permissions are created here (they are normally created after `migrate`), so the groups can be given them on a
fresh database.
"""
from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    # Answers clients: reads accounts, orders, balances, deposits and withdrawals; changes nothing.
    "support": [
        "accounts.view_user", "accounts.view_loginevent",
        "orders.view_instrument", "orders.view_tradingsession", "orders.view_order",
        "portfolios.view_ledgeraccount", "portfolios.view_position", "portfolios.view_deposit",
        "portfolios.view_withdrawal",
    ],
    # Runs the market: halts and resumes symbols, cancels orders, retries dead-lettered outbox events.
    "operations": [
        "accounts.view_user",
        "orders.view_instrument", "orders.change_instrument", "orders.view_tradingsession",
        "orders.view_order", "orders.change_order",
        "outbox.view_outboxevent", "outbox.change_outboxevent",
    ],
    # Moves money by hand, under four eyes: requests and approves adjustments, approves or rejects withdrawals.
    "finance": [
        "accounts.view_user",
        "portfolios.view_ledgeraccount", "portfolios.view_journalentry", "portfolios.view_position",
        "portfolios.view_deposit", "portfolios.view_withdrawal",
        "portfolios.view_adjustmentrequest", "portfolios.add_adjustmentrequest",
        "portfolios.approve_adjustmentrequest",
        "portfolios.view_withdrawalunderreview", "portfolios.review_withdrawal",
    ],
    # Reads the staff audit log and the clients' statements (ledgers, journal entries) and every decision.
    "compliance": [
        "accounts.view_user", "accounts.view_loginevent", "accounts.view_staffauditlog",
        "orders.view_order",
        "portfolios.view_ledgeraccount", "portfolios.view_journalentry", "portfolios.view_position",
        "portfolios.view_deposit", "portfolios.view_withdrawal",
        "portfolios.view_adjustmentrequest", "portfolios.view_withdrawalunderreview",
    ],
}
APPS = ("accounts", "orders", "outbox", "portfolios")


def roles_create(apps, schema_editor):
    for label in APPS:
        config = apps.get_app_config(label)
        config.models_module = True  # the migration state's app configs have none; create_permissions needs one
        create_permissions(config, verbosity=0, apps=apps)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = [perm.split(".") for perm in perms]
        found = list(Permission.objects.filter(content_type__app_label__in=APPS, codename__in=[c for _, c in wanted])
                     .select_related("content_type"))
        chosen = [p for p in found if [p.content_type.app_label, p.codename] in wanted]
        missing = {perm for perm in perms} - {f"{p.content_type.app_label}.{p.codename}" for p in chosen}
        if missing:
            raise RuntimeError(f"role {name}: unknown permissions {sorted(missing)}")
        group.permissions.set(chosen)


def roles_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_staff_audit_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("orders", "0006_drop_redundant_indexes"),
        ("outbox", "0002_outbox_created_brin"),
        ("portfolios", "0007_four_eyes"),
    ]

    operations = [migrations.RunPython(roles_create, roles_delete)]
